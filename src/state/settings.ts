import type { Db } from '../store/db.js';
import { checkText } from './check.js';

/** A setting of the state folder (its home environment, an environment's policy), or undefined. */
export function getSetting(db: Db, key: string): string | undefined {
  return (db.prepare('SELECT value FROM settings WHERE key = ?').get(key) as { value: string } | undefined)?.value;
}

/** Sets a setting of the state folder. */
export function setSetting(db: Db, key: string, value: string, actor: string, now: Date = new Date()): void {
  db.prepare('INSERT INTO settings (key, value, updated_by, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_by = excluded.updated_by, updated_at = excluded.updated_at').run(
    checkText('key', key),
    value,
    checkText('actor', actor),
    now.toISOString(),
  );
}
