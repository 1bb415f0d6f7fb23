/**
 * The deploy state's records, as read from the state database (camelCase; absent values are
 * `undefined`). JSON columns come back parsed.
 */

/** Where a release is in its life: pending → deploying → live | failed; live → superseded | rolled-back. */
export type ReleaseStatus = 'pending' | 'deploying' | 'live' | 'superseded' | 'failed' | 'rolled-back';

/** An immutable, numbered record of what a service runs: an image digest and its rendered config. */
export interface Release {
  id: number;
  service: string;
  /** 1, 2, 3 … per service. */
  version: number;
  digest: string;
  /** The rendered service config. */
  config: Record<string, unknown>;
  status: ReleaseStatus;
  reason: string | undefined;
  /** The release whose content this one reuses, for a rollback. */
  rollbackOf: number | undefined;
  /** Where a promoted release came from: the service key and release version it was live as. */
  promotedFrom: PromotedFrom | undefined;
  /** The secret versions it runs with (its environment's), or undefined for none. */
  secrets: { env: string; versions: Record<string, number> } | undefined;
  createdBy: string;
  createdAt: string;
  /** When its deploy ended (it went live or failed). */
  finishedAt: string | undefined;
}

/** The release a promotion deployed: its environment, service key and version there. */
export interface PromotedFrom {
  env: string;
  service: string;
  version: number;
}

/** What imago last did to, or saw of, an instance: the last four are final. */
export type InstanceState = 'starting' | 'healthy' | 'serving' | 'draining' | 'stopped' | 'failed' | 'crashed' | 'lost';

/** One running copy of a release on a provider, as recorded. */
export interface InstanceRow {
  /** The provider's id for it. */
  id: string;
  service: string;
  releaseId: number;
  provider: string;
  port: number | undefined;
  state: InstanceState;
  createdAt: string;
  updatedAt: string;
  /** Its lineage's failures in a row that led to its start (0: started fresh). */
  attempt: number;
  /** The failed instance whose place it took. */
  replaces: string | undefined;
  /** When it first passed its health gate. */
  healthyAt: string | undefined;
  /** When it ended (a final state), and why. */
  endedAt: string | undefined;
  reason: string | undefined;
  /** For a failure: the run of failures in a row it ended. */
  streak: number | undefined;
  /** A failure whose place waits for a replacement. */
  awaiting: boolean;
  /** Its last output lines once it ended (a failure's, for `imago status`). */
  output: string[] | undefined;
}

/** A service's desired state: what the control loop makes true. */
export interface ServiceRow {
  name: string;
  env: string;
  provider: string;
  /** The release that should serve; undefined: none. */
  releaseId: number | undefined;
  replicas: number;
  /** The router's address, once chosen. */
  listen: { host: string; port: number } | undefined;
  /** What the router speaks. */
  protocol: 'http' | 'tcp';
  /** The certificate and key files the router terminates TLS with; undefined: plain. */
  tls: { cert: string; key: string } | undefined;
  createdAt: string;
  updatedAt: string;
  updatedBy: string;
}

/** Something done to an instance from outside imago, as the guard found it. */
export interface DriftFinding {
  id: number;
  service: string;
  instance: string;
  releaseId: number | undefined;
  finding: string;
  /** What the policy did: replace the instance, or report only. */
  action: 'replace' | 'report';
  foundAt: string;
}

/** Where a deploy is: running until it succeeds, fails or is aborted. */
export type DeployState = 'running' | 'succeeded' | 'failed' | 'aborted';

/** One deploy of a release, with its plan and, once finished, what happened. */
export interface Deploy {
  id: number;
  service: string;
  releaseId: number;
  /** The release serving when it began, if any. */
  fromReleaseId: number | undefined;
  /** The plan it follows (JSON). */
  plan: unknown;
  state: DeployState;
  startedAt: string;
  finishedAt: string | undefined;
  reason: string | undefined;
  /** Health probe transcript and last log lines (JSON), once finished. */
  transcript: unknown;
  /** The replicas the service had when it began. */
  fromReplicas: number | undefined;
}

/** One entry of the append-only, hash-chained ledger. */
export interface LedgerEvent {
  seq: number;
  at: string;
  /** Who did it: a user, or `imago` for the control plane. */
  actor: string;
  /** What happened, dotted: `release.created`, `release.live`, `deploy.failed` … */
  kind: string;
  service: string | undefined;
  releaseId: number | undefined;
  instance: string | undefined;
  data: Record<string, unknown>;
  /** The previous event's hash (64 zeros for the first). */
  prevHash: string;
  /** sha256 (hex) of prevHash + the canonical JSON of this event's fields. */
  hash: string;
}

/** A held lease on a named lock. */
export interface Lock {
  name: string;
  owner: string;
  /** When the lease ends unless renewed (ms since the epoch). */
  expiresAt: number;
}
