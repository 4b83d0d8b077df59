export * from './codec.js'
export * from './crypto.js'
