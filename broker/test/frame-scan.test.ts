/**
 * The broker's frame check scans payloads in place (spec's cbor-scan) and decodes only what the
 * scan refuses: these differential fuzz tests show that the scan accepts exactly what the full
 * decoder accepts, with the same type ([LM-BRK-3], [LM-MQTT-4]), on frames of every type generated
 * from their schemas with boundary values (sizes, ranges, lengths in bytes of UTF-8), extension
 * keys, unknown keys, wrong types, noncanonical heads and orders, and on those frames mutated byte
 * by byte, the spec's frame vectors and random bytes; and that the broker's verdicts (reason and
 * message included) are the ones the decoder-only check gave. Seeded (FUZZ_SEED overrides).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FRAME_TYPE_NAMES, type FrameTypeId, LmError, Reason, SCHEMAS, TOPIC_FRAMES, decodeCbor, decodeFrame, fromHex, parseTopic } from '@livematrix/spec';
import { type FieldRule, SCAN_SCHEMAS, scanCbor, scanFrame } from '@livematrix/spec/cbor-scan';
import { checkPublish, type FrameCheck } from '../src/index.js';
import { type Entry, TYPES, anyEncoded, arrayB, bytesB, canonical, cat, edgeValues, frame, mapB, minimalOf, mutated, textB, uintB } from './frame-gen.js';

const SEED = Number(process.env['FUZZ_SEED'] ?? 20261128);

// ---- the oracle -----------------------------------------------------------------------------------

/** What the full decoder says: the frame's type, or 0 when it refuses (always an LmError). */
function decoded(bytes: Uint8Array): number {
  try {
    return decodeFrame(bytes).type;
  } catch (e) {
    if (!(e instanceof LmError)) throw e;
    return 0;
  }
}

function cborOk(bytes: Uint8Array): boolean {
  try {
    decodeCbor(bytes);
    return true;
  } catch (e) {
    if (!(e instanceof LmError)) throw e;
    return false;
  }
}

const vectors: Uint8Array[] = (JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'spec', 'vectors', 'v1', 'frames.json'), 'utf8')) as { testGroups: { tests: { hex: string }[] }[] })
  .testGroups.flatMap((g) => g.tests.map((t) => fromHex(t.hex)));

/** The broker's check before the scan: the decoder on every payload (the reference for the verdicts). */
function decoderCheck(topic: string, payload: Uint8Array): FrameCheck {
  const t = parseTopic(topic);
  if (!t) return topic.startsWith('lm/') ? { ok: false, reason: Reason.schema, detail: `topic "${topic}" is not in the protocol tree` } : { ok: 'ignored' };
  try {
    const f = decodeFrame(payload);
    if (!TOPIC_FRAMES[t.kind].has(f.type)) return { ok: false, reason: Reason.schema, detail: `${FRAME_TYPE_NAMES[f.type]} is not allowed on a ${t.kind} topic ([LM-MQTT-4])` };
    return { ok: true, type: f.type };
  } catch (e) {
    if (e instanceof LmError) return { ok: false, reason: e.code, detail: e.message };
    return { ok: false, reason: Reason.internal, detail: String(e) };
  }
}

const TOPICS = ['lm/1/f1/d/d1/state', 'lm/1/f1/d/d1/in', 'lm/1/f1/d/d1/out', 'lm/1/f1/d/d1/status', 'lm/1/f1/g/gw/state', 'lm/1/f1/alarm', 'lm/1/f1/revocation', 'lm/1/f1/s/st1/in', 'lm/1/f1/x/d1/in', 'other/topic'];

describe('scanFrame accepts exactly what decodeFrame accepts [LM-BRK-3] [LM-MQTT-4]', () => {
  it('the scan table has every frame type of the spec, with the fields (keys, names, optional) of its schema', () => {
    for (const [t, name] of Object.entries(FRAME_TYPE_NAMES)) {
      const type = Number(t) as FrameTypeId;
      const mirror = SCAN_SCHEMAS[type];
      expect(mirror, `${name} (${type}) is missing from SCAN_SCHEMAS`).toBeDefined();
      const shape = (fs: readonly { key: number; name: string; optional?: boolean }[]) => fs.map((x) => `${x.key}:${x.name}:${x.optional === true}`).sort();
      expect(shape(mirror ?? []), name).toEqual(shape(SCHEMAS[type]));
    }
  });

  it('the spec\'s frame vectors, valid and invalid, and each of them mutated', () => {
    let valid = 0;
    for (const v of vectors) {
      const d = decoded(v);
      expect(scanFrame(v), Buffer.from(v).toString('hex')).toBe(d);
      if (d) valid++;
    }
    expect(valid).toBeGreaterThan(10);
    expect(valid).toBeLessThan(vectors.length);
    fc.assert(fc.property(mutated(fc.constantFrom(...vectors)), (b) => scanFrame(b) === decoded(b)), { seed: SEED, numRuns: 5000 });
  });

  it('generated frames of every type, at their schemas\' edges: same verdict and type, and both verdicts are common', () => {
    const seen = new Map<number, { ok: number; refused: number }>();
    fc.assert(fc.property(frame, (b) => {
      const d = decoded(b);
      const s = scanFrame(b);
      const type = b[2] !== undefined && b[2] < 0x18 ? b[2] : -1;
      const x = seen.get(type) ?? { ok: 0, refused: 0 };
      if (d) x.ok++;
      else x.refused++;
      seen.set(type, x);
      if (s !== d) throw new Error(`scan ${s}, decoder ${d} for ${Buffer.from(b).toString('hex').slice(0, 400)}`);
    }), { seed: SEED, numRuns: 15_000 });
    // the generator reaches both verdicts for every type, or the comparison shows little
    for (const t of TYPES) {
      const x = seen.get(t);
      expect(x?.ok, `${FRAME_TYPE_NAMES[t]} frames accepted`).toBeGreaterThan(30);
      expect(x?.refused, `${FRAME_TYPE_NAMES[t]} frames refused`).toBeGreaterThan(30);
    }
  });

  it('every field of every type on its bounds and one step past them, the rest of the frame minimal and valid', () => {
    let n = 0;
    let ok = 0;
    for (const type of TYPES) {
      const fields = SCAN_SCHEMAS[type] as FieldRule[];
      const frameWith = (key: number, value: Uint8Array | undefined, optional: boolean) => {
        const es: Entry[] = fields.filter((fr) => !fr.optional || fr.key === key).map((fr) => [uintB(fr.key), fr.key === key && value ? value : minimalOf(fr.rule)]);
        const body = mapB(canonical(value || optional ? es : es.filter(([k]) => !Buffer.from(k).equals(Buffer.from(uintB(key))))));
        return arrayB([uintB(1), uintB(type), body, bytesB(new Uint8Array(64))]);
      };
      for (const fr of fields) {
        for (const v of [...edgeValues(fr.rule), undefined]) {
          const b = frameWith(fr.key, v, fr.optional);
          const d = decoded(b);
          expect(scanFrame(b), `${FRAME_TYPE_NAMES[type]}.${fr.name} = ${v ? Buffer.from(v).toString('hex').slice(0, 60) : '(absent)'}`).toBe(d);
          n++;
          if (d) ok++;
        }
      }
    }
    expect(ok).toBeGreaterThan(n / 4);
    expect(ok).toBeLessThan((3 * n) / 4);
  });

  it('generated frames mutated byte by byte', () => {
    fc.assert(fc.property(mutated(frame), (b) => scanFrame(b) === decoded(b)), { seed: SEED, numRuns: 10_000 });
  });

  it('random bytes, and any CBOR value (scanCbor against decodeCbor as well)', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (b) => scanFrame(b) === decoded(b) && scanCbor(b) === cborOk(b)), { seed: SEED, numRuns: 5000 });
    fc.assert(fc.property(fc.oneof(anyEncoded, mutated(anyEncoded)), (b) => scanCbor(b) === cborOk(b)), { seed: SEED, numRuns: 10_000 });
    // a frame of exactly the maximum size passes, one byte more does not ([LM-FRAME-1], [LM-CBOR-5])
    const big = (n: number) => cat(arrayB([uintB(1), uintB(15), mapB([[uintB(1), textB('d1')], [uintB(2), uintB(81)], [uintB(16), bytesB(new Uint8Array(n))]]), bytesB(new Uint8Array(0))]));
    const overhead = big(0).length + 2; // a 3-byte string head instead of 1
    for (const b of [big(65536 - overhead), big(65537 - overhead)]) expect(scanFrame(b)).toBe(decoded(b));
    expect(scanFrame(big(65536 - overhead))).toBe(15);
  });
});

describe('the broker\'s verdicts are the decoder\'s [LM-BRK-3] [LM-BRK-11]', () => {
  it('checkPublish gives what a decoder-only check gives, reason and message included, on every topic kind', () => {
    fc.assert(fc.property(fc.constantFrom(...TOPICS), fc.oneof(frame, mutated(frame), fc.constantFrom(...vectors)), (topic, b) => {
      expect(checkPublish(topic, b)).toEqual(decoderCheck(topic, b));
    }), { seed: SEED, numRuns: 10_000 });
  });

  it('a Buffer, as aedes hands payloads over, and a view into a larger buffer give the same verdict as a copy', () => {
    for (const v of vectors.slice(0, 40)) {
      const inside = Buffer.concat([Buffer.from([0xff, 0xff]), Buffer.from(v), Buffer.from([0xff])]).subarray(2, 2 + v.length);
      for (const topic of TOPICS) expect(checkPublish(topic, inside)).toEqual(decoderCheck(topic, v.slice()));
    }
  });
});
