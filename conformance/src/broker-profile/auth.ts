/**
 * @module broker-profile/auth
 * Who may connect: connect tokens ([LM-BRK-1]) and client ids bound to identities ([LM-BRK-8]).
 * Two connections of one device are takeover.ts' ([LM-BRK-14]).
 */
import { Role, type RoleId, makeConnectToken, randomBytes, toHex } from '@livematrix/spec';
import { R } from '../generated/requirements.js';
import type { BrokerTest } from './common.js';
import { alive, must, verdict } from './common.js';
import type { BrokerIdentity } from './target.js';

const BAD_CREDENTIALS = 4; // CONNACK return codes of MQTT 3.1.1
const IDENTIFIER_REJECTED = 2;

const rc = (code: number | undefined) => (code === 0 ? 'accepted' : code === undefined ? 'closed without a CONNACK' : `return code ${code}`);

export const connectToken: BrokerTest = {
  id: 'broker/connect-token',
  title: 'connect tokens: a fresh one accepted; a missing, garbage, unknown-id, wrong-role, forged, stale, future or replayed one refused with return code 4',
  covers: [R.LM_BRK_1],
  async run({ target: t, conns, checks }) {
    const token = (who: BrokerIdentity, o: { id?: string; role?: RoleId; key?: Uint8Array; time?: number } = {}) =>
      makeConnectToken(o.id ?? who.id, o.role ?? Role[who.role], o.key ?? who.secretKey, o.time);
    // a fresh token of each identity must be taken, or the refusals below would prove nothing
    const first = await conns.refusal(t.device1, { token: token(t.device1) });
    must(checks, R.LM_BRK_1, first === 0, `a fresh connect token of ${t.device1.id} signed by its identity key was refused (${rc(first)}): the broker does not authenticate clients by connect token (SPEC.md §10.1)`);
    for (const who of [t.device2, t.gateway]) {
      const c = await conns.refusal(who, { token: token(who) });
      verdict(checks, R.LM_BRK_1, c === 0, `a fresh connect token of ${who.id} (${who.role}) was refused (${rc(c)})`);
    }
    const d1 = t.device1;
    const stranger = `lm-suite-${toHex(randomBytes(4))}`;
    const cases: { what: string; who: BrokerIdentity; o: Parameters<typeof conns.refusal>[1] }[] = [
      { what: 'no password (no token)', who: d1, o: { noPassword: true } },
      { what: 'a password that is no token (40 random bytes)', who: d1, o: { token: randomBytes(40) } },
      { what: `a token of "${stranger}", an id not in the registry`, who: d1, o: { token: token(d1, { id: stranger, key: randomBytes(32) }), username: stranger } },
      { what: `a token of ${d1.id} claiming the gateway role`, who: d1, o: { token: token(d1, { role: Role.gateway }) } },
      { what: `a token of ${t.device2.id} signed by ${d1.id}'s key`, who: t.device2, o: { token: token(t.device2, { key: d1.secretKey }) } },
      { what: `a token of ${t.gateway.id} signed by ${d1.id}'s key`, who: t.gateway, o: { token: token(t.gateway, { key: d1.secretKey }) } },
      { what: `a token of ${d1.id} signed by a key not registered`, who: d1, o: { token: token(d1, { key: randomBytes(32) }) } },
      { what: 'a token 60 s old', who: d1, o: { token: token(d1, { time: Date.now() - 60_000 }) } },
      { what: 'a token 60 s in the future', who: d1, o: { token: token(d1, { time: Date.now() + 60_000 }) } },
    ];
    for (const c of cases) {
      const code = await conns.refusal(c.who, c.o);
      verdict(checks, R.LM_BRK_1, code === BAD_CREDENTIALS, `CONNECT with ${c.what}: ${rc(code)}, expected return code 4`);
    }
    // the nonce of an accepted token is spent for 60 s
    const once = token(d1);
    const a = await conns.refusal(d1, { token: once });
    verdict(checks, R.LM_BRK_1, a === 0, `a fresh token of ${d1.id} was refused (${rc(a)})`);
    const again = await conns.refusal(d1, { token: once });
    verdict(checks, R.LM_BRK_1, again === BAD_CREDENTIALS, `the same token used a second time: ${rc(again)}, expected return code 4 (its nonce was accepted within the last 60 s)`);
  },
};

export const clientIds: BrokerTest = {
  id: 'broker/client-id',
  title: 'client ids bound to identities: an identity\'s own lm-dev-{id}-{suffix} accepted, any other refused with return code 2, so no session is taken over',
  covers: [R.LM_BRK_8],
  async run(ctx) {
    const { target: t, conns, checks } = ctx;
    const [d1, d2, gw] = [t.device1, t.device2, t.gateway];
    const own = await conns.refusal(d1, { clientId: conns.clientIdOf(d1) });
    must(checks, R.LM_BRK_8, own === 0, `${d1.id} with its own client id ${conns.clientIdOf(d1, 'x')} was refused (${rc(own)})`);
    const cases: { who: BrokerIdentity; clientId: string; what: string }[] = [
      { who: d1, clientId: conns.clientIdOf(d2), what: `${d1.id} with a client id of ${d2.id}` },
      { who: d1, clientId: conns.clientIdOf(gw), what: `${d1.id} with a client id of gateway ${gw.id}` },
      { who: gw, clientId: conns.clientIdOf(d1), what: `gateway ${gw.id} with a client id of ${d1.id}` },
      { who: d1, clientId: `lm-dev-${d1.id}`, what: `${d1.id} with lm-dev-${d1.id} (no "-suffix": belongs to no identity)` },
      { who: d1, clientId: `lm-gw-${d1.id}-${toHex(randomBytes(2))}`, what: `${d1.id} with the gateway prefix lm-gw-${d1.id}-...` },
      { who: d1, clientId: `suite-${toHex(randomBytes(4))}`, what: `${d1.id} with a client id outside lm-dev-/lm-gw-` },
    ];
    for (const c of cases) {
      const code = await conns.refusal(c.who, { clientId: c.clientId });
      verdict(checks, R.LM_BRK_8, code === IDENTIFIER_REJECTED, `CONNECT of ${c.what} (${c.clientId}): ${rc(code)}, expected return code 2`);
    }
    // no take-over: d1 tries the client id of d2's live session
    const victimId = conns.clientIdOf(d2, 'victim');
    const victim = await conns.as(d2, { clientId: victimId });
    const code = await conns.refusal(d1, { clientId: victimId });
    verdict(checks, R.LM_BRK_8, code === IDENTIFIER_REJECTED, `${d1.id} connecting with the client id of ${d2.id}'s live session (${victimId}): ${rc(code)}, expected return code 2`);
    const survived = await alive(ctx, victim, d2);
    verdict(checks, R.LM_BRK_8, survived, `${d2.id}'s session ${victimId} was closed when ${d1.id} connected with its client id: another identity took it over`);
  },
};
