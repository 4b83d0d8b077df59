/**
 * `ssoflow/testing`: the contract test kit for adapters and hosts: the runner-agnostic
 * storage contract suite, recording fakes, a fixed clock, sequential ids and record builders.
 *
 * @module
 */

export { DUMMY_FORM_VIEW, DUMMY_STEP_ID, type DummyProviderOptions, dummyProvider } from '../providers/dummy/index.js'
export * from './contract/index.js'
export * from './fakes.js'
export * from './fixtures.js'
