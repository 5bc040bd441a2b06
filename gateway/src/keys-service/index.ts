/**
 * @module @livematrix/gateway/keys-service
 * The keys service of protected jobs (SPEC §16, [LM-SVC-2] .. [LM-SVC-5]): it registers
 * uploads and keeps their chunk keys and playbooks sealed at rest, keeps the licence secrets of
 * streaming transactions, releases chunk keys wrapped for one device session and paced by the
 * transaction, feeds the store its epoch keys, and deletes a job on its owner's request. A
 * separate node from the gateway: the gateway's own modules never import it.
 */
export { openKeysService, type DeleteResult, type Id, type JobPlaybook, type KeysService, type KeysServiceOptions, type ReleaseRequest } from './service.js';
export { type EpochKey, type EpochSource } from './epochs.js';
export { NoGrantError, ReleaseBusyError, ReleaseWithheldError, UnknownJobError } from './errors.js';
export { KEYS_DB_FILE } from './db.js';
