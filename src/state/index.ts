export * from './types.js';
export { LockError } from './errors.js';
export { canonicalJson } from './canonical-json.js';
export { appendEvent, listEvents, verifyLedger, GENESIS_HASH, type NewEvent, type LedgerCheck } from './ledger.js';
export { createRelease, setReleaseStatus, getRelease, liveRelease, listReleases, lastGoodRelease, RELEASE_TRANSITIONS, RELEASE_STATUSES, type NewRelease } from './releases.js';
export { acquireLock, renewLock, releaseLock, readLock } from './lock.js';
export { recordInstance, setInstanceState, getInstance, listInstances, INSTANCE_STATES, type NewInstance } from './instances.js';
export { createDeploy, finishDeploy, getDeploy, listDeploys, runningDeploys, FINAL_DEPLOY_STATES, type NewDeploy, type DeployOutcome } from './deploys.js';
