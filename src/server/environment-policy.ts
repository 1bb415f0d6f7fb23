/**
 * Each environment's policy (how long a release must have soaked where it is promoted from,
 * and whose signatures it requires), held by the server so that a client allowed to deploy
 * to an environment cannot lower it by editing its config. An admin's request (the state
 * folder's token, or one with the `admin` scope) sets it from the admin's config; any other
 * request is held to the stricter of what is stored and what it sent. Changes are in the
 * ledger (`environment.policy`).
 */
import type { KeyObject } from 'node:crypto';
import { keyIdOf } from '../sign/dsse.js';
import { parsePublicKey } from '../sign/keys.js';
import { appendEvent } from '../state/ledger.js';
import { getSetting, setSetting } from '../state/settings.js';
import type { Db } from '../store/db.js';

/** A policy as a client sends it and the server stores it: `keys` are PEM public keys. */
export interface PolicyText {
  minSoak: number;
  keys?: string[] | undefined;
}

/** The policy a request is held to. */
export interface EffectivePolicy {
  minSoak: number;
  /** Undefined: no signature required. */
  keys: KeyObject[] | undefined;
}

const settingKey = (env: string) => `policy:${env}`;

/** The policy stored for `env`, or undefined when no admin has set one. */
export function storedPolicy(db: Db, env: string): PolicyText | undefined {
  const text = getSetting(db, settingKey(env));
  return text === undefined ? undefined : (JSON.parse(text) as PolicyText);
}

/**
 * The policy a request into `env` is held to. `sent`: what the client's config says (none: a
 * client without environments). An admin's `sent` becomes the stored policy (so removing a
 * key from the config and deploying as admin removes it); anyone else gets the larger
 * minSoak and the stored keys, or the keys it sent when none are stored.
 */
export function policyFor(db: Db, env: string, sent: PolicyText | undefined, caller: { admin: boolean; actor: string }): EffectivePolicy {
  const stored = storedPolicy(db, env);
  let text: PolicyText | undefined;
  if (caller.admin && sent) {
    text = sent;
    if (JSON.stringify(stored ?? null) !== JSON.stringify(sent)) {
      db.transaction(() => {
        setSetting(db, settingKey(env), JSON.stringify(sent), caller.actor);
        const keyids = sent.keys?.map((pem) => keyIdOf(parsePublicKey(pem, 'policy key')));
        appendEvent(db, { actor: caller.actor, kind: 'environment.policy', data: { env, minSoak: sent.minSoak, requireSignature: keyids ?? null } });
      })();
    }
  } else {
    text = stored || sent ? { minSoak: Math.max(stored?.minSoak ?? 0, sent?.minSoak ?? 0), keys: stored?.keys ?? sent?.keys } : undefined;
  }
  return { minSoak: text?.minSoak ?? 0, keys: text?.keys?.map((pem, i) => parsePublicKey(pem, `the policy of ${env}: key ${i + 1}`)) };
}
