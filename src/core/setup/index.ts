/**
 * The setup pipeline's pure deciders: setup, disable, settings, identity refresh, and the
 * planning of link-request and unlink mails.
 *
 * @module
 */
export * from './admin.js'
export * from './decide-setup.js'
export * from './link-requests.js'
export * from './redact.js'
export * from './refresh.js'
