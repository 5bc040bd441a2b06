/**
 * The consumer's API on a fake session: order, consumption after each piece ([LM-DLV-4]),
 * failures, one reader, and CONTROL operations by name ([LM-DLV-9]).
 */
import { describe, expect, it } from 'vitest';
import { ControlOp, LmError, Reason, type SessionParams, type SignedTx } from '@livematrix/spec';
import { StreamReadError } from '../src/errors.js';
import { Control, type ControlOpId } from '../src/frames.js';
import { IncomingStream, type StreamSession } from '../src/stream.js';

function fake() {
  const consumed: string[] = [];
  const ops: number[] = [];
  const session: StreamSession = {
    sid: new Uint8Array(16), params: {} as SessionParams, from: 0, resumed: false,
    tx: { hash: new Uint8Array(32).fill(0xab), body: { job: 'job', size: 3 } } as unknown as SignedTx,
    consumed: (b) => void consumed.push(new TextDecoder().decode(b)),
    control: async (op: ControlOpId) => void ops.push(op),
  };
  return { stream: new IncomingStream(session), consumed, ops, session };
}
const bytes = (s: string) => new TextEncoder().encode(s);

describe('IncomingStream', () => {
  it('yields pieces in order and reports each consumed when the next is asked for [LM-DLV-4]', async () => {
    const { stream, consumed } = fake();
    expect([stream.job, stream.size, stream.txh.slice(0, 4)]).toEqual(['job', 3, 'abab']);
    stream.push(bytes('G1 X1\nG1'));
    const lines: string[] = [];
    const reading = (async () => {
      for await (const l of stream.lines()) {
        lines.push(l);
        if (lines.length === 1) expect(consumed).toEqual([]); // the first piece is still being read
      }
    })();
    await new Promise((r) => setTimeout(r, 5));
    stream.push(bytes(' X2\n'));
    stream.finish();
    await reading;
    expect(lines).toEqual(['G1 X1', 'G1 X2']);
    expect(consumed).toEqual(['G1 X1\nG1', ' X2\n']);
  });

  it('throws the session\'s failure to the reader, and a second reader gets StreamReadError', async () => {
    const { stream } = fake();
    const first = stream.bytes();
    stream.fail(new LmError(Reason.aborted, 'gone'));
    await expect(first.next()).rejects.toMatchObject({ code: Reason.aborted });
    await expect(stream.bytes().next()).rejects.toBeInstanceOf(StreamReadError);
  });

  it('sends pause, resume and abort by name [LM-DLV-9]', async () => {
    const { stream, ops, session } = fake();
    await stream.pause();
    await stream.resume();
    await stream.abort();
    expect(ops).toEqual([ControlOp.pause, ControlOp.resume, ControlOp.abort]);
    await session.control(Control.pause);
    // @ts-expect-error a bare number is not a ControlOpId: control(3) does not compile
    await session.control(3);
    expect(ops).toHaveLength(5);
  });
});
