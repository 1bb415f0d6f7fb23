import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { openDb, type Db } from '../../src/store/db.js';

/**
 * Fresh state databases (real SQLite files) in one temp folder, all closed and removed when
 * the test file ends (and `reopen`, another connection to one of them). Call it at the top level of a test file.
 */
export async function dbFactory(prefix: string): Promise<{ dir: string; freshDb: () => Db; reopen: (file: string) => Db }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const open: Db[] = [];
  after(async () => {
    open.forEach((db) => db.open && db.close());
    await rm(dir, { recursive: true, force: true });
  });
  /** Another connection to a database file, closed with the rest. */
  const reopen = (file: string) => {
    const db = openDb(file);
    open.push(db);
    return db;
  };
  let count = 0;
  const freshDb = () => reopen(join(dir, `${++count}.db`));
  return { dir, freshDb, reopen };
}
