// The `pulseline` package (ESM entry): the same module as the CommonJS entry, so both share one
// set of exit hooks.
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const pulseline = require('./index.js')

export const Client = pulseline.Client
export const { optionTable, MAX_ID_CHARS, MAX_EVENT_NAME_CHARS } = pulseline
export default pulseline.Client
