/**
 * `ssoflow/dummy`: a form-based provider for tests, the quickstart and demos.
 *
 * @module ssoflow/dummy
 */
export { DUMMY_FORM_VIEW, DUMMY_STEP_ID, type DummyProviderOptions, dummyProvider } from '../providers/dummy/index.js'
