/** An engine event, as `GET /events` sends it (the fields imago reads). */
export interface EngineEvent {
  Type?: string;
  Action?: string;
  Actor?: { ID?: string; Attributes?: Record<string, string> };
  timeNano?: number;
  time?: number;
}

/** The engine actions that change a running container from outside its image and spec. */
const DRIFT_ACTIONS: Record<string, string> = {
  exec_start: 'docker exec',
  'extract-to-dir': 'files copied in (docker cp)',
  pause: 'paused (docker pause)',
  update: 'limits changed (docker update)',
  rename: 'renamed (docker rename)',
  restart: 'restarted (docker restart)',
  kill: 'signalled (docker stop/kill)',
};

/**
 * The drift an engine event means for one instance: one line like
 * `2026-11-25T14:53:28.000Z docker exec: /bin/sh -c "echo hi > /tmp/x"`, or undefined for
 * events that change nothing (create, start, die, exec_die, reads such as docker cp out).
 * Pure: the caller has already set aside the events imago caused itself.
 */
export function driftOf(event: EngineEvent): { instance: string; line: string; at: number } | undefined {
  if (event.Type !== undefined && event.Type !== 'container') return undefined;
  const action = event.Action ?? '';
  const verb = action.split(':')[0]!.trim();
  const what = DRIFT_ACTIONS[verb];
  const instance = event.Actor?.Attributes?.['imago.instance'];
  if (!what || !instance) return undefined;
  // SIGKILL cannot be survived: the container is dying, and shows as crashed, not as changed.
  if (verb === 'kill' && (event.Actor?.Attributes?.signal === '9' || event.Actor?.Attributes?.signal === 'SIGKILL')) return undefined;
  const at = event.timeNano !== undefined ? Math.floor(event.timeNano / 1e6) : (event.time ?? 0) * 1000;
  const detail = action.includes(':') ? action.slice(action.indexOf(':') + 1).trim() : verb === 'kill' ? `signal ${event.Actor?.Attributes?.signal ?? '?'}` : '';
  return { instance, line: `${new Date(at).toISOString()} ${what}${detail ? `: ${detail}` : ''}`, at };
}
