export * from './email.js'
export * from './identity.js'
export * from './limits.js'
export * from './records.js'
