/**
 * @module frames
 * The device's names for the frames it handles (`HintsFrame` rather than `Frame<6>`) and for
 * CONTROL operations.
 */
import { ControlOp, type Frame, type FrameType } from '@livematrix/spec';

export type OfferFrame = Frame<typeof FrameType.OFFER>;
export type TimeRespFrame = Frame<typeof FrameType.TIME_RESP>;
export type HintsFrame = Frame<typeof FrameType.HINTS>;
export type KeyFrame = Frame<typeof FrameType.KEY>;

/** The frame types whose revision a device checks ([LM-REV-2]). */
export type RevisionedType = typeof FrameType.HINTS | typeof FrameType.KEY;

declare const controlOpBrand: unique symbol;

/**
 * A CONTROL operation ([LM-DLV-9]): one of {@link Control}'s, never a bare number, so that
 * `control(3)` does not compile and `control(Control.abort)` says what it does.
 */
export type ControlOpId = (typeof ControlOp)[keyof typeof ControlOp] & { readonly [controlOpBrand]: true };

/** The CONTROL operations ([LM-DLV-9]), with the wire values of `ControlOp`. */
export const Control = ControlOp as { readonly [K in keyof typeof ControlOp]: (typeof ControlOp)[K] & ControlOpId };
