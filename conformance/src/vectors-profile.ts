/**
 * @module vectors-profile
 * The vectors profile: runs every test of spec/vectors/v1 through an implementation's adapter
 * (a process speaking line-based JSON on stdin/stdout) and records a result per test.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { errorMessage } from '@livematrix/spec';

export interface CheckResult {
  id: string;
  title: string;
  covers: string[];
  status: 'pass' | 'fail';
  message?: string;
  ms: number;
}

interface VTest {
  tcId: number;
  comment: string;
  result: 'valid' | 'invalid';
  requirements: string[];
  error?: string;
  [k: string]: unknown;
}
interface VFile {
  testGroups: ({ type: string; suite?: number; tests: VTest[] } & Record<string, unknown>)[];
}

/** The vector files of spec/vectors/v1 the profile runs, in order. */
export const VECTOR_FILES = ['hint.json', 'pack.json', 'keys.json', 'aead.json', 'frames.json', 'tx.json', 'ticket.json', 'revocation.json', 'protected.json'] as const;

const vectorsDir = () => join(dirname(createRequire(import.meta.url).resolve('@livematrix/spec/requirements.json')), 'vectors', 'v1');

/** The request for a vector test, and how to judge the answer. */
function requests(file: string, g: VFile['testGroups'][number], t: VTest): { req: Record<string, unknown>; expect: (a: Record<string, unknown>) => string | null }[] {
  const eq = (k: string, want: unknown) => (a: Record<string, unknown>) => (JSON.stringify(a[k]) === JSON.stringify(want) ? null : `${k}: got ${JSON.stringify(a[k])}, want ${JSON.stringify(want)}`);
  const err = (a: Record<string, unknown>) => (a['ok'] === false && a['error'] === t.error ? null : `want error ${t.error}, got ${JSON.stringify(a)}`);
  switch (file) {
    case 'hint.json':
      if (g.type !== 'HintTest') return [];
      return [{ req: { op: 'hint', suite: g.suite, hk: t['hk'], w: t['w'], L: t['L'], g: t['g'] }, expect: t.result === 'valid' ? eq('hint', t['hint']) : err }];
    case 'pack.json':
      if (g.type === 'ShiftTest') return [{ req: { op: 'shift', w: t['w'], sh: t['sh'], symbols: t['symbols'] }, expect: eq('shifted', t['shifted']) }];
      return t.result === 'valid'
        ? [{ req: { op: 'pack', w: t['w'], bytes: t['bytes'] }, expect: eq('symbols', t['symbols']) }, { req: { op: 'unpack', w: t['w'], n: t['n'], symbols: t['symbols'] }, expect: eq('bytes', t['bytes']) }]
        : [{ req: { op: 'unpack', w: t['w'], n: t['n'], symbols: t['symbols'] }, expect: err }];
    case 'keys.json':
      if (t['z']) {
        return [{
          req: { op: 'keys', secret: t['gatewayEphemeralSecret'], peerPublic: t['deviceEphemeralPublic'], licence: t['licence'], offer: t['offer'], accept: t['accept'], r0: t['r0'], revisions: (t['g2d'] as { revision: number }[]).map((x) => x.revision) },
          expect: (a) => ['ckG2d0', 'ckD2g0', 'fkG2d', 'fkD2g', 'g2d', 'd2g'].map((k) => eq(k, t[k])(a)).find((x) => x) ?? null,
        }];
      }
      if (t['peerPublic']) return [{ req: { op: 'ecdh', secret: t['secret'], peerPublic: t['peerPublic'] }, expect: err }];
      return [];
    case 'aead.json':
      if (t['kind'] === 'chunk') {
        return t.result === 'valid'
          ? [{ req: { op: 'chunk_seal', key: t['key'], sid: t['sid'], index: t['index'], plaintext: t['plaintext'] }, expect: eq('ciphertext', t['ciphertext']) }]
          : [{ req: { op: 'chunk_open', key: t['key'], sid: t['sid'], index: t['index'], ciphertext: t['ciphertext'] }, expect: err }];
      }
      if (t['kind'] === 'wrap') return [{ req: { op: 'wrap', wrapKey: t['wrapKey'], sid: t['sid'], index: t['index'], chunkKey: t['chunkKey'] }, expect: eq('wrapped', t['wrapped']) }];
      return [];
    case 'frames.json': {
      const keys = { ...(t['macKey'] ? { macKey: t['macKey'] } : {}), ...(t['signerPublic'] ? { signerPublic: t['signerPublic'] } : {}) };
      return [{ req: { op: 'frame', hex: t['hex'], ...keys }, expect: t.result === 'valid' ? eq('type', t['type']) : err }];
    }
    case 'tx.json':
      return [{ req: { op: 'tx', tx: t['tx'], context: t['context'] }, expect: t.result === 'valid' ? eq('txh', t['txh']) : err }];
    case 'ticket.json':
      return [{ req: { op: 'ticket', ticket: t['ticket'], context: t['context'] }, expect: t.result === 'valid' ? eq('ticketId', t['id']) : err }];
    case 'revocation.json':
      switch (g.type) {
        case 'RevocationListTest':
          return [{ req: { op: 'revocation', list: t['list'], trustedOperators: t['trustedOperators'] }, expect: t.result === 'valid' ? eq('seq', (t['decoded'] as { seq: number }).seq) : err }];
        case 'RevocationRefusalTest':
          return [{ req: { op: 'revocation_refusal', list: t['list'], trustedOperators: t['trustedOperators'], tx: t['tx'], now: t['now'] }, expect: t.result === 'valid' ? eq('refused', false) : err }];
        case 'RevocationSequenceTest':
          // a rollback is no error: the adapter says which list it holds after each offer ([LM-REVOKE-2])
          return [{ req: { op: 'revocation_sequence', lists: t['lists'], trustedOperators: t['trustedOperators'] }, expect: eq('held', t['held']) }];
        default:
          return [];
      }
    case 'protected.json':
      return protectedRequests(g.type, t, eq, err);
    default:
      return [];
  }
}

type Judge = (a: Record<string, unknown>) => string | null;

/** Protected jobs (SPEC.md §16): the owner's chunks and upload ([LM-PROT-1]), the distribution's keys ([LM-PROT-2]). */
function protectedRequests(type: string, t: VTest, eq: (k: string, want: unknown) => Judge, err: Judge): { req: Record<string, unknown>; expect: Judge }[] {
  const valid = t.result === 'valid';
  switch (type) {
    case 'ProtectedChunkTest': {
      const open = { req: { op: 'protected_open', key: t['key'], jid: t['jid'], index: t['index'], ciphertext: t['ciphertext'] }, expect: valid ? eq('plaintext', t['plaintext']) : err };
      return valid ? [{ req: { op: 'protected_seal', key: t['key'], jid: t['jid'], index: t['index'], plaintext: t['plaintext'] }, expect: eq('ciphertext', t['ciphertext']) }, open] : [open];
    }
    case 'UploadTest':
      return [{ req: { op: 'upload', upload: t['upload'], trustedOwners: t['trustedOwners'] }, expect: valid ? eq('uh', t['uh']) : err }];
    case 'HintLayerTest':
      // the key schedule of keys.json with 32 zero bytes for K_lic
      return [{
        req: { op: 'keys', secret: t['gatewayEphemeralSecret'], peerPublic: t['deviceEphemeralPublic'], licence: t['licence'], offer: t['offer'], accept: t['accept'], r0: t['r0'], revisions: (t['g2d'] as { revision: number }[]).map((x) => x.revision) },
        expect: (a) => ['ckG2d0', 'ckD2g0', 'fkG2d', 'fkD2g', 'g2d', 'd2g'].map((k) => eq(k, t[k])(a)).find((x) => x) ?? null,
      }];
    case 'ContentChainTest':
      return [{
        req: { op: 'content_keys', licence: t['licence'], th: t['th'], r0: t['r0'], revisions: (t['wrapKeys'] as { revision: number }[]).map((x) => x.revision) },
        expect: (a) => eq('ckc', t['ckc'])(a) ?? eq('wrapKeys', t['wrapKeys'])(a),
      }];
    case 'ContentWrapTest': {
      const unwrap = { req: { op: 'content_unwrap', licence: t['licence'], th: t['th'], r0: t['r0'], revision: t['revision'], sid: t['sid'], index: t['index'], wrapped: t['wrapped'] }, expect: valid ? eq('chunkKey', t['chunkKey']) : err };
      return valid ? [{ req: { op: 'wrap', wrapKey: t['wrapKey'], sid: t['sid'], index: t['index'], chunkKey: t['chunkKey'] }, expect: eq('wrapped', t['wrapped']) }, unwrap] : [unwrap];
    }
    case 'ProtectedTxTest':
      return [{ req: { op: 'tx', tx: t['tx'], context: t['context'] }, expect: valid ? eq('txh', t['txh']) : err }];
    default:
      return [];
  }
}

/** Runs the vectors profile against an adapter command (run through the shell). */
export async function runVectors(command: string, log: (l: string) => void = () => undefined): Promise<CheckResult[]> {
  const child = spawn(command, { shell: true, stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! });
  const pending = new Map<number, (a: Record<string, unknown>) => void>();
  lines.on('line', (l) => {
    try {
      const a = JSON.parse(l) as Record<string, unknown>;
      pending.get(a['id'] as number)?.(a);
      pending.delete(a['id'] as number);
    } catch {
      // not JSON: ignored
    }
  });
  let next = 1;
  const ask = (req: Record<string, unknown>): Promise<Record<string, unknown>> => new Promise((res, rej) => {
    const id = next++;
    const timer = setTimeout(() => {
      pending.delete(id);
      rej(new Error(`adapter did not answer request ${id} within 10 s`));
    }, 10_000);
    pending.set(id, (a) => {
      clearTimeout(timer);
      res(a);
    });
    child.stdin!.write(JSON.stringify({ id, ...req }) + '\n');
  });
  const results: CheckResult[] = [];
  for (const file of VECTOR_FILES) {
    const v = JSON.parse(readFileSync(join(vectorsDir(), file), 'utf8')) as VFile;
    for (const g of v.testGroups) {
      for (const t of g.tests) {
        for (const { req, expect } of requests(file, g, t)) {
          const t0 = Date.now();
          let message: string | null;
          try {
            const a = await ask(req);
            message = t.result === 'valid' && a['ok'] !== true ? `adapter error: ${JSON.stringify(a['error'])}` : expect(a);
          } catch (e) {
            message = errorMessage(e);
          }
          results.push({ id: `vectors/${file.replace('.json', '')}/${t.tcId}/${req['op'] as string}`, title: t.comment, covers: t.requirements, status: message ? 'fail' : 'pass', ...(message ? { message } : {}), ms: Date.now() - t0 });
        }
      }
    }
    log(`${file}: done`);
  }
  child.stdin!.end();
  child.kill();
  return results;
}
