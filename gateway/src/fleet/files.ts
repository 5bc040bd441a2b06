/**
 * @module fleet/files
 * The job files a fleet service holds: `{dir}/{name}` as operators put them (PUT /api/files or
 * a copy into the directory), and, once a job names one, an immutable copy by SHA-256 in
 * `{dir}/.jobs/{sha256}` that the job streams from however often it runs ([LM-FLEET-2]): a file
 * replaced under its name does not change a queued job. Every write goes to a temporary file that
 * is renamed only once complete and synced, so no partial file is ever taken for a job.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, fsyncSync, openSync, closeSync, linkSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import type { FileView } from './api.js';
import { BadRequestError, NotFoundError, TooLargeError } from './errors.js';

/** File names an operator may use: no path, no hidden files. */
export const FILE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._ -]{0,127}$/;

/** SHA-256 (hex) and size of a file, read as a stream. */
export async function fileSha256(path: string): Promise<{ sha256: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const b of createReadStream(path)) {
    h.update(b as Buffer);
    size += (b as Buffer).length;
  }
  return { sha256: h.digest('hex'), size };
}

function syncFile(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export class FileStore {
  private readonly jobs: string;
  /** name -> its digest, while the file's mtime and size are what they were */
  private readonly digests = new Map<string, { mtime: number; size: number; sha256: string }>();

  constructor(readonly dir: string, readonly maxBytes = 512 * 2 ** 20) {
    this.jobs = join(dir, '.jobs');
    mkdirSync(this.jobs, { recursive: true });
  }

  private named(name: string): string {
    if (!FILE_NAME_RE.test(name) || name.includes('..')) throw new BadRequestError(`file name ${JSON.stringify(name.slice(0, 80))}: letters, digits, ".", "_", "-" and spaces, 1-128 characters, not starting with "." or a space`);
    return join(this.dir, name);
  }

  /** The files operators can name in a job. */
  async list(): Promise<FileView[]> {
    const out: FileView[] = [];
    for (const name of readdirSync(this.dir).sort()) {
      if (!FILE_NAME_RE.test(name)) continue;
      const st = statSync(join(this.dir, name));
      if (!st.isFile()) continue;
      out.push({ name, size: st.size, sha256: await this.digest(name, st.mtimeMs, st.size) });
    }
    return out;
  }

  private async digest(name: string, mtime: number, size: number): Promise<string> {
    const c = this.digests.get(name);
    if (c && c.mtime === mtime && c.size === size) return c.sha256;
    const d = await fileSha256(join(this.dir, name));
    this.digests.set(name, { mtime, size, sha256: d.sha256 });
    return d.sha256;
  }

  /** Writes a file from a stream: complete and synced, then renamed into place. Over `maxBytes`, nothing is kept. */
  async put(name: string, body: Readable): Promise<FileView> {
    const path = this.named(name);
    const tmp = join(this.jobs, `.upload-${randomBytes(6).toString('hex')}`);
    const h = createHash('sha256');
    let size = 0;
    try {
      const max = this.maxBytes;
      await pipeline(body, async function* (src: AsyncIterable<Buffer>) {
        for await (const b of src) {
          size += b.length;
          if (size > max) throw new TooLargeError(`file ${name}: over the limit of ${max} bytes`);
          h.update(b);
          yield b;
        }
      }, createWriteStream(tmp, { mode: 0o600 }));
      syncFile(tmp);
      renameSync(tmp, path);
    } catch (e) {
      rmSync(tmp, { force: true });
      throw e;
    }
    const sha256 = h.digest('hex');
    const st = statSync(path);
    this.digests.set(name, { mtime: st.mtimeMs, size: st.size, sha256 });
    return { name, size, sha256 };
  }

  /** Pins the named file for a job: its immutable copy by digest ([LM-FLEET-2]). */
  async pin(name: string): Promise<FileView> {
    const path = this.named(name);
    if (!existsSync(path) || !statSync(path).isFile()) throw new NotFoundError(`no file named ${JSON.stringify(name)} in ${this.dir}`);
    const tmp = join(this.jobs, `.pin-${randomBytes(6).toString('hex')}`);
    try {
      try {
        linkSync(path, tmp); // the same inode: a later rename over the name leaves it alone
      } catch {
        copyFileSync(path, tmp);
      }
      const d = await fileSha256(tmp);
      const dest = this.path(d.sha256);
      if (!existsSync(dest)) {
        if (statSync(tmp).nlink > 1) copyFileSync(tmp, dest + '.tmp'); // a write in place to the named file must not reach the job's copy
        else renameSync(tmp, dest + '.tmp');
        syncFile(dest + '.tmp');
        renameSync(dest + '.tmp', dest);
      }
      return { name, size: d.size, sha256: d.sha256 };
    } finally {
      rmSync(tmp, { force: true });
    }
  }

  /** The pinned copy of a job's file. */
  path(sha256: string): string {
    if (!/^[0-9a-f]{64}$/.test(sha256)) throw new BadRequestError('a job file is named by its SHA-256 in hex');
    return join(this.jobs, sha256);
  }
}
