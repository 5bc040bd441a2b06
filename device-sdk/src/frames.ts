/**
 * @module frames
 * The device's names for the frames it handles (`HintsFrame` rather than `Frame<6>`) and for
 * CONTROL operations.
 */
import type { Frame, FrameType } from '@livematrix/spec';

export type OfferFrame = Frame<typeof FrameType.OFFER>;
export type TimeRespFrame = Frame<typeof FrameType.TIME_RESP>;
export type HintsFrame = Frame<typeof FrameType.HINTS>;
export type KeyFrame = Frame<typeof FrameType.KEY>;

/** The frame types whose revision a device checks ([LM-REV-2]). */
export type RevisionedType = typeof FrameType.HINTS | typeof FrameType.KEY;

/** The CONTROL operations ([LM-DLV-9]): spec's ControlOp, under the name the SDK's API has used. */
export { ControlOp as Control, type ControlOpId } from '@livematrix/spec';
