#!/usr/bin/env node
/**
 * @module cli
 * `livematrix`: one command for operators and vendors. Subcommands: demo, broker, serve, gateway,
 * stream, device, keygen, sign, revoke, acl, ledger, and for protected jobs keys-service, store,
 * upload, grant, delete. `livematrix <cmd> --help` says more.
 *
 * This file is the entry point (package.json's bin) and the dispatch; each command lives in
 * commands/, the shared pieces (arguments, help texts, logging, broker connection, progress)
 * beside it.
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, LmError } from '@livematrix/spec';
import { EXIT, Failure, UsageError } from './args.js';
import { HELP, help } from './help.js';

type Command = (argv: string[]) => number | Promise<number>;

/**
 * Each command's module is loaded only when it runs: a device on a small host then loads the
 * device SDK and nothing of the gateway, the fleet service, the broker or their databases
 * (about 30 MiB of resident memory less, bench:footprint).
 */
const COMMANDS: Record<string, () => Promise<Command>> = {
  demo: async () => (await import('./commands/demo.js')).demo,
  broker: async () => (await import('./commands/broker.js')).brokerCmd,
  keygen: async () => (await import('./commands/keys.js')).keygen,
  sign: async () => (await import('./commands/keys.js')).sign,
  revoke: async () => (await import('./commands/revoke.js')).revoke,
  acl: async () => (await import('./commands/broker.js')).aclCmd,
  stream: async () => (await import('./commands/stream.js')).stream,
  gateway: async () => (await import('./commands/stream.js')).gateway,
  serve: async () => (await import('./commands/serve.js')).serve,
  device: async () => (await import('./commands/device.js')).device,
  ledger: async () => (await import('./commands/ledger.js')).ledger,
  'keys-service': async () => (await import('./commands/services.js')).keysService,
  store: async () => (await import('./commands/services.js')).storeCmd,
  upload: async () => (await import('./commands/protected.js')).upload,
  delete: async () => (await import('./commands/protected.js')).deleteCmd,
  grant: async () => (await import('./commands/protected.js')).grant,
};

/** How a command's error ends the process: a message on stderr and the exit code. */
function report(cmd: string | undefined, e: unknown): number {
  if (e instanceof UsageError) {
    console.error(`livematrix: ${e.message}\nRun "livematrix ${cmd && HELP[cmd] ? cmd + ' ' : ''}--help" for usage.`);
    return EXIT.usage;
  }
  // a wire failure, a local one (a missing or malformed file or option), or a command's own
  if (e instanceof LmError || e instanceof ConfigError || e instanceof Failure) {
    console.error(`livematrix: ${e.message}`);
    return EXIT.failure;
  }
  console.error(`livematrix: unexpected error: ${e instanceof Error && e.stack ? e.stack : String(e)}`);
  return EXIT.failure;
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    if (cmd === undefined || cmd === 'help' || cmd === '--help' || cmd === '-h') return help('main');
    const load = Object.hasOwn(COMMANDS, cmd) ? COMMANDS[cmd] : undefined;
    if (!load) throw new UsageError(`unknown command "${cmd}"`);
    const run = await load();
    return await run(rest);
  } catch (e) {
    return report(cmd, e);
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then((code) => process.exit(code), (e: unknown) => {
    console.error(e);
    process.exit(EXIT.failure);
  });
}
