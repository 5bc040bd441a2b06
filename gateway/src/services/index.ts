/**
 * @module @livematrix/gateway/services
 * The services of protected jobs as processes of their own over the broker (SPEC §16.1): each
 * party's inbox `lm/1/{fleet}/s/{id}/in` ([LM-SVC-7]) and its signed, sealed requests and answers
 * ([LM-SVC-6]) ({@link ServiceEndpoint}); the keys service and the store served from their library
 * objects ({@link serveKeys}, {@link serveStore}); and their clients: a gateway's KeyRelease and
 * SegmentSource, an owner's upload and delete, an operator's grant ({@link keysClient},
 * {@link storeClient}), and a store's epoch keys from a remote keys service ({@link remoteEpochs}).
 */
export { type Answer, type CallOptions, type ConnectOptions, type EndpointOptions, type Handler, REFUSALS_PER_SECOND, type RequestContext, type ServiceDefinition, type ServicePeer, STAGE_MAX, ServiceEndpoint } from './endpoint.js';
export { IDS_PER_PAGE, RELEASE_BATCH, type DeletedJob, type KeysClient, type KeysClientOptions, type KeysTrust, keysClient, serveKeys } from './keys.js';
export { GET_MAX_IDS, type ServeStoreOptions, type StoreClient, type StoreClientOptions, type StoreTrust, serveStore, storeClient } from './store.js';
export { type RemoteEpochs, remoteEpochs } from './epochs.js';
export { Fields, cmap } from './codec.js';
