import type { BigIntStats } from 'node:fs';
import { readFileSync } from 'node:fs';
import { lstat } from 'node:fs/promises';
import { sha256, sha256File, type Digest } from '../oci/digest.js';
import { SMALL_FILE } from '../oci/layer-writer.js';
import type { Db } from '../store/db.js';

/**
 * Hashes files, remembering each result by (device, inode, size, mtime, ctime) in the state
 * database, as git's index does: a file whose metadata did not change is not read again.
 * A write always changes ctime, and ctime cannot be set by a program, so a hit is safe.
 */
export class FileHasher {
  private readonly get;
  private readonly put;
  private pending: Array<[string, string, string, number, string, string, string]> = [];

  constructor(private readonly db: Db) {
    this.get = db.prepare(`SELECT dev, ino, size, mtime_ns, ctime_ns, digest FROM file_hashes WHERE path = ?`);
    this.put = db.prepare(
      `INSERT INTO file_hashes (path, dev, ino, size, mtime_ns, ctime_ns, digest) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(path) DO UPDATE SET dev = excluded.dev, ino = excluded.ino, size = excluded.size,
       mtime_ns = excluded.mtime_ns, ctime_ns = excluded.ctime_ns, digest = excluded.digest`,
    );
  }

  /** The sha256 of a regular file's content; `st` saves a stat when the caller has one. */
  async hash(path: string, st?: BigIntStats): Promise<Digest> {
    st ??= await lstat(path, { bigint: true });
    const key = [String(st.dev), String(st.ino), Number(st.size), String(st.mtimeNs), String(st.ctimeNs)] as const;
    const row = this.get.get(path) as { dev: string; ino: string; size: number; mtime_ns: string; ctime_ns: string; digest: Digest } | undefined;
    if (row && row.dev === key[0] && row.ino === key[1] && row.size === key[2] && row.mtime_ns === key[3] && row.ctime_ns === key[4]) {
      return row.digest;
    }
    // A small file is read in one synchronous call (see SMALL_FILE).
    const digest = st.size <= SMALL_FILE ? sha256(readFileSync(path)) : await sha256File(path);
    this.pending.push([path, ...key, digest]);
    if (this.pending.length >= 1000) this.flush();
    return digest;
  }

  /** Writes remembered hashes to the database in one transaction. */
  flush(): void {
    const rows = this.pending;
    this.pending = [];
    if (rows.length > 0) this.db.transaction(() => rows.forEach((r) => this.put.run(...r)))();
  }
}
