/**
 * @module @livematrix/broker
 * Broker-side pieces of Live Matrix. This release has the frame check a broker applies to
 * every publish on a protocol topic; the aedes plugin is built on it (see the project's issues).
 */
export { checkPublish, type FrameCheck } from './frame-check.js';
