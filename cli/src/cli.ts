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
import { aclCmd, brokerCmd } from './commands/broker.js';
import { demo } from './commands/demo.js';
import { device } from './commands/device.js';
import { keygen, sign } from './commands/keys.js';
import { deleteCmd, grant, upload } from './commands/protected.js';
import { keysService, storeCmd } from './commands/services.js';
import { ledger } from './commands/ledger.js';
import { revoke } from './commands/revoke.js';
import { serve } from './commands/serve.js';
import { gateway, stream } from './commands/stream.js';
import { HELP, help } from './help.js';

const COMMANDS: Record<string, (argv: string[]) => number | Promise<number>> = {
  demo,
  broker: brokerCmd,
  keygen,
  sign,
  revoke,
  acl: aclCmd,
  stream,
  gateway,
  serve,
  device,
  ledger,
  'keys-service': keysService,
  store: storeCmd,
  upload,
  delete: deleteCmd,
  grant,
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
    const run = Object.hasOwn(COMMANDS, cmd) ? COMMANDS[cmd] : undefined;
    if (!run) throw new UsageError(`unknown command "${cmd}"`);
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
