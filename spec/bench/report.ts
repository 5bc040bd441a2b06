/**
 * Shared helpers of the benchmarks: machine description and the BENCHMARKS.md section writer.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';

export function machine(): string {
  const c = cpus();
  return `${c[0]?.model.trim() ?? 'unknown CPU'}, ${c.length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${process.platform}-${process.arch}`;
}

/** Replaces (or appends) the section between `<!-- bench:NAME -->` markers; atomic write. */
export function writeSection(root: string, name: string, body: string): string {
  const file = join(root, 'BENCHMARKS.md');
  const start = `<!-- bench:${name} -->`;
  const end = `<!-- /bench:${name} -->`;
  let text = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n\nEach section is written by its `npm run bench:*` command; figures of one section come from one run.\n';
  const block = `${start}\n${body.trim()}\n${end}`;
  const a = text.indexOf(start);
  const b = text.indexOf(end);
  text = a >= 0 && b > a ? text.slice(0, a) + block + text.slice(b + end.length) : `${text.trimEnd()}\n\n${block}\n`;
  writeFileSync(file + '.tmp', text);
  renameSync(file + '.tmp', file);
  return file;
}

export function fmtRate(x: number | undefined): string {
  if (x === undefined) return 'n/a';
  return x >= 1e6 ? `${(x / 1e6).toFixed(2)} M/s` : `${(x / 1e3).toFixed(0)} k/s`;
}
