/**
 * @module scenarios/delivery
 * Delivery scenarios: the device's HELLO, exact delivery under each suite, and its answers
 * to hints that are ambiguous or unknown in their revision table (NACKs, shifted re-sends).
 */
import { Reason, minHintLength, fromHex as fromHexBytes, randomBytes, shiftedSymbol, toHex } from '@livematrix/spec';
import { type Chunk } from '../session.js';
import { R } from '../generated/requirements.js';
import { type Scenario, check, checkContentType, checkDeterministic, checkTopicsAndQos, deliverExact, nackOf, open, sleep } from './common.js';

export const hello: Scenario = {
  id: 'device/hello', title: 'announces itself: signed HELLO with capabilities, retained', covers: ['LM-MQTT-2', 'LM-CAP-1'],
  async run(ctx) {
    const h = await ctx.tester.waitHello();
    check(ctx, R.LM_MQTT_2, h.online, 'HELLO says offline');
    check(ctx, R.LM_MQTT_2, await ctx.tester.helloIsRetained(), 'the HELLO is not retained on the state topic');
    check(ctx, R.LM_CAP_1, h.caps.suites.length > 0 && h.caps.suites.every(([, r]) => r > 0), 'capabilities report no measured hash rate');
    check(ctx, R.LM_CAP_1, h.caps.wmax >= 8 && h.caps.mem > 0, 'capabilities report no usable w or memory');
  },
};

export const deliverW16Blake3: Scenario = {
  id: 'device/deliver-w16-blake3', title: 'exact delivery, w=16, keyed blake3, signed receipt',
  covers: ['LM-HINT-1', 'LM-HINT-2', 'LM-PACK-1', 'LM-PACK-2', 'LM-AEAD-1', 'LM-AEAD-2', 'LM-KEY-1', 'LM-KEY-2', 'LM-KEY-3', 'LM-FRAME-2', 'LM-DLV-1', 'LM-DLV-2', 'LM-DLV-6', 'LM-DLV-7', 'LM-TIME-1', 'LM-MQTT-1', 'LM-CBOR-1', 'LM-MQTT-7'],
  async run(ctx) {
    const s = await open(ctx, 16);
    check(ctx, R.LM_TIME_1, s.timeRequests > 0, 'no TIME_REQ before the first ACK');
    await deliverExact(ctx, s, [R.LM_HINT_1, R.LM_HINT_2, R.LM_PACK_1, R.LM_PACK_2, R.LM_AEAD_1, R.LM_AEAD_2, R.LM_KEY_1, R.LM_KEY_2, R.LM_KEY_3, R.LM_FRAME_2, R.LM_DLV_1, R.LM_DLV_6]);
    // [LM-DLV-2]: while frames arrive, an ACK at least every P/2: every HINTS frame is followed by an
    // ACK within P/2 (and 400 ms for a loaded host and the broker's hops)
    const bound = s.params.period / 2 + 400;
    const late = s.frameSentTimes.filter((t) => !s.ackTimes.some((a) => a >= t && a <= t + bound));
    check(ctx, R.LM_DLV_2, s.frameSentTimes.length > 0 && late.length === 0, `${late.length} of ${s.frameSentTimes.length} HINTS frames got no ACK within ${bound} ms (P/2 = ${s.params.period / 2} ms)`);
    checkDeterministic(ctx);
    checkTopicsAndQos(ctx);
    checkContentType(ctx);
  },
};

export const deliverW12Keccak: Scenario = {
  id: 'device/deliver-w12-keccak', title: 'exact delivery, w=12, keccak-256', covers: ['LM-HINT-1', 'LM-PARAM-2', 'LM-PARAM-3'],
  async run(ctx) {
    await deliverExact(ctx, await open(ctx, 12, { suite: 1 }), [R.LM_HINT_1, R.LM_PARAM_2, R.LM_PARAM_3]);
  },
};

export const deliverW20Sha3: Scenario = {
  id: 'device/deliver-w20-sha3', title: 'exact delivery, w=20, sha3-256', covers: ['LM-HINT-1', 'LM-PARAM-2'],
  async run(ctx) {
    await deliverExact(ctx, await open(ctx, 20, { suite: 2 }), [R.LM_HINT_1, R.LM_PARAM_2]);
  },
};

export const ambiguityNack: Scenario = {
  id: 'device/ambiguity-nack', title: 'NACKs a hint that is ambiguous in its revision table, at once', covers: ['LM-HINT-3', 'LM-HINT-7', 'LM-HINT-9', 'LM-DLV-2'],
  async run(ctx) {
    const s = await open(ctx, 16, { L: minHintLength(16) });
    const rev = s.rev();
    // find a hint value two candidates share in this revision
    const all = s.hints(Uint32Array.from({ length: 65536 }, (_, g) => g), rev);
    const L = s.params.L;
    const seen = new Map<string, number>();
    let amb: Uint8Array | undefined;
    for (let g = 0; g < 65536 && !amb; g++) {
      const k = toHex(all.subarray(g * L, g * L + L));
      if (seen.has(k)) amb = all.slice(g * L, g * L + L);
      else seen.set(k, g);
    }
    if (!amb) throw new Error('no ambiguous hint in this revision (retry)');
    const [c] = s.plan(ctx.data) as [Chunk];
    const fr = c.frames[0]!;
    const hints = s.hints(c.symbols.subarray(fr.off, fr.off + fr.n), rev);
    hints.set(amb, 0); // symbol 0 now carries an ambiguous hint
    await s.sendFrame(c, 0, { rev, hints });
    const sent = Date.now();
    const n = await s.wait(() => nackOf(s, fr.seq, Reason.ambiguous), 3000, `a NACK of frame ${fr.seq}`).catch(() => undefined);
    const nackedIn = Date.now() - sent;
    // however the device resolves hints (a table or a scan), the answer is the table's: ambiguous ([LM-HINT-7], [LM-HINT-9])
    for (const id of [R.LM_HINT_7, R.LM_HINT_9]) check(ctx, id, n && n[1] === Reason.ambiguous && n[2].includes(0), `no ambiguous NACK naming symbol 0 of frame ${fr.seq} (got ${JSON.stringify(n)})`);
    check(ctx, R.LM_HINT_3, !s.received.has(fr.seq), 'frame with an ambiguous hint was reported received');
    // [LM-DLV-2]: the NACK goes at once after the event, not with the next periodic ACK
    check(ctx, R.LM_DLV_2, nackedIn <= s.params.period / 2 + 400, `the ambiguous NACK came ${nackedIn} ms after the frame; at once means within P/2 = ${s.params.period / 2} ms (and 400 ms of slack)`);
  },
};

export const shiftedResend: Scenario = {
  id: 'device/shifted-resend', title: 'completes an ambiguous symbol from shifted hints within the same revision', covers: ['LM-DLV-11', 'LM-DLV-1'],
  async run(ctx) {
    const data = ctx.data.subarray(0, 600); // one chunk, one frame
    const s = await open(ctx, 16, { L: minHintLength(16), period: 5000, data });
    const p = s.params;
    // start early in a revision, so that the whole exchange fits in it
    const into = () => (Date.now() - p.grace - p.epoch) % p.period;
    if (into() > p.period / 2) await sleep(p.period - into() + 50);
    const rev = s.rev();
    const all = s.hints(Uint32Array.from({ length: 65536 }, (_, g) => g), rev);
    const L = p.L;
    const count = new Map<string, number>();
    for (let g = 0; g < 65536; g++) {
      const k = toHex(all.subarray(g * L, g * L + L));
      count.set(k, (count.get(k) ?? 0) + 1);
    }
    const unique = (g: number) => count.get(toHex(all.subarray(g * L, g * L + L))) === 1;
    const amb = [...count].find(([, n]) => n > 1)?.[0];
    if (!amb) throw new Error('no ambiguous hint in this revision (retry)');
    const chunks = s.plan(data);
    if (chunks.length !== 1 || chunks[0]!.frames.length !== 1) throw new Error('test data is not one frame');
    const c = chunks[0]!;
    const fr = c.frames[0]!;
    const syms = c.symbols.subarray(fr.off, fr.off + fr.n);
    const hints = s.hints(syms, rev);
    hints.set(fromHexBytes(amb), 0); // symbol 0 carries an ambiguous hint; others may be ambiguous by nature
    await s.sendFrame(c, 0, { rev, hints });
    await s.wait(() => nackOf(s, fr.seq, Reason.ambiguous), 3000, `an ambiguous NACK of frame ${fr.seq}`);
    // every symbol of the frame that is ambiguous goes again as the two shifted symbols around it
    const failed = [0, ...[...syms].flatMap((g, j) => (j > 0 && !unique(g) ? [j] : []))];
    const pos = [...new Set(failed.flatMap((j) => [j, j + 1]))].sort((x, y) => x - y);
    let sh = 0;
    for (let t = 1; t < p.w && !sh; t++) if (pos.every((j) => unique(shiftedSymbol(syms, p.w, t, j)))) sh = t;
    if (!sh) throw new Error('no shift gives unambiguous shifted hints (retry)');
    await s.sendFrame(c, 0, { rev, idx: pos, sh });
    await ctx.checks.expect(R.LM_DLV_11, () => s.wait(() => s.received.has(fr.seq), 3000, `frame ${fr.seq} reported received`), `after the shifted re-send of symbols ${failed.join(', ')} (shift ${sh})`);
    if (s.rev() !== rev) throw new Error('the revision turned during the test (retry)');
    // the bits it took from the shifted hints must be the right ones: the chunk decrypts
    await deliverExact(ctx, s, [R.LM_DLV_11, R.LM_DLV_1], data, { chunks, skipFirstSending: (seq) => seq === fr.seq });
  },
};

export const unknownHintNack: Scenario = {
  id: 'device/unknown-hint-nack', title: 'NACKs a hint absent from the revision table, by its index within the frame, and delivers nothing for it', covers: ['LM-HINT-4', 'LM-HINT-8', 'LM-DLV-14'],
  async run(ctx) {
    const s = await open(ctx, 16);
    const [c] = s.plan(ctx.data) as [Chunk];
    // the second frame of the chunk: its symbols start at off > 0, so an index relative to the
    // chunk differs from one relative to the frame ([LM-DLV-14])
    const fi = c.frames.length > 1 ? 1 : 0;
    const fr = c.frames[fi]!;
    const at = Math.min(3, fr.n - 1);
    const rev = s.rev();
    const hints = s.hints(c.symbols.subarray(fr.off, fr.off + fr.n), rev);
    // an absent hint: a value no candidate of this revision has (search the whole table)
    const L = s.params.L;
    const all = s.hints(Uint32Array.from({ length: 65536 }, (_, g) => g), rev);
    const used = new Set<string>();
    for (let g = 0; g < 65536; g++) used.add(toHex(all.subarray(g * L, g * L + L)));
    let absent = randomBytes(L);
    while (used.has(toHex(absent))) absent = randomBytes(L);
    hints.set(absent, at * L);
    await s.sendFrame(c, fi, { rev, hints });
    const n = await s.wait(() => nackOf(s, fr.seq, Reason.unknown), 3000, 'a NACK').catch(() => undefined);
    check(ctx, R.LM_HINT_4, n && n[1] === Reason.unknown, `no unknown-hint NACK (got ${JSON.stringify(n)})`);
    check(ctx, R.LM_DLV_14, n[2].includes(at) && !n[2].includes(fr.off + at), `the NACK names symbol ${JSON.stringify(n[2])}; the absent hint is symbol ${at} of frame ${fr.seq} (off ${fr.off}): indices are relative to off`);
    check(ctx, R.LM_HINT_8, !s.received.has(fr.seq), 'a frame with an absent hint was reported received');
    // the rest of the chunk and its KEY: everything the device needs but the absent symbol
    for (let k = 0; k < c.frames.length; k++) if (k !== fi) await s.sendFrame(c, k, { rev: s.rev() });
    await s.wait(() => c.frames.every((f, k) => k === fi || s.received.has(f.seq)), 3000, 'the other frames of the chunk reported received');
    await s.sendKey(c);
    // a frame it already has, after the KEY: the ACK it answers with says what the consumer took by
    // then, and a wrong device would have opened the chunk
    const other = c.frames.findIndex((_, k) => k !== fi);
    const at2 = Date.now();
    if (other >= 0) await s.sendFrame(c, other, { rev: s.rev() });
    await s.wait(() => s.ackTimes.some((t) => t > at2), 3000, 'an ACK after the KEY');
    const consumed = Math.max(0, ...s.acks.map((a) => a.consumed));
    check(ctx, R.LM_HINT_8, consumed === 0, `the device delivered ${consumed} bytes of a chunk one of whose hints is absent from its table`);
  },
};

export const everySuite: Scenario = {
  id: 'device/every-suite', title: 'streams under every hash suite its HELLO reports', covers: ['LM-CAP-4'],
  async run(ctx) {
    const h = await ctx.tester.waitHello();
    const data = ctx.data.subarray(0, 6000);
    for (const [suite] of h.caps.suites) {
      if (suite !== 1 && suite !== 2 && suite !== 3) {
        check(ctx, R.LM_CAP_4, false, `the HELLO reports suite ${suite}, which SPEC.md does not define`);
        continue;
      }
      const s = await ctx.checks.expect(R.LM_CAP_4, () => open(ctx, 12, { suite, data }), `an OFFER under suite ${suite}, which the device reports`);
      await deliverExact(ctx, s, [R.LM_CAP_4], data);
    }
  },
};

export const tableNotReady: Scenario = {
  id: 'device/table-not-ready', title: 'hints of a revision whose table is still being built are held or refused busy, never NACKed unknown', covers: ['LM-REV-5'],
  async run(ctx) {
    // w = 20 under a 1 s period: the device builds a 2^20-entry table every second, and frames
    // stamped with a revision right at its start reach it while that table may be unfinished
    const s = await open(ctx, 20, { suite: 3, period: 1000, data: ctx.data.subarray(0, 20_000) });
    await deliverExact(ctx, s, [], ctx.data.subarray(0, 20_000));
    const unknown = s.acks.flatMap((a) => a.nack).filter((x) => x[1] === Reason.unknown);
    check(ctx, R.LM_REV_5, unknown.length === 0, `${unknown.length} NACK(s) with reason unknown for genuine hints (frames ${[...new Set(unknown.map((x) => x[0]))].join(', ')}): a table not ready must hold or refuse busy`);
  },
};
