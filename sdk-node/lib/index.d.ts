// Types of the `pulseline` package: generated from the Rust doc comments (native/index.d.ts).
export * from '../native/index'
import { Client } from '../native/index'
export default Client
