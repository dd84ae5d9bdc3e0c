'use strict'
// The `pulseline` package (CommonJS entry). The class is the native one (sdk-node/src/client.rs,
// typed by the generated native/index.d.ts); this file adds what JavaScript does best:
// - the fast capture path: a message is checked here, a shallow copy of its payload is queued,
//   and at the end of the tick (or every MAX_PENDING messages) all of them are serialized by
//   one `JSON.stringify` and handed to the native side in one call (src/serialized.rs). A
//   capture call costs a few hundred nanoseconds and no Node-API work;
// - the exact path for anything that check is not sure of (ids given as numbers, a
//   `messageId`, `BigInt`, `Date`-less timestamps that don't parse, class instances, cycles,
//   functions, very large values): the message's fields, read here, are passed positionally to
//   the native method, which converts each value and throws a precise TypeError;
// - the process exit hooks (exit.js).
const { isMainThread } = require('node:worker_threads')
const native = require('../native/index.js')
const { watch } = require('./exit.js')

const COMMON = ['userId', 'anonymousId', 'timestamp', 'context', 'integrations', 'messageId']
const FIELDS = {
  track: new Set([...COMMON, 'event', 'properties']),
  identify: new Set([...COMMON, 'traits']),
  page: new Set([...COMMON, 'name', 'properties']),
  screen: new Set([...COMMON, 'name', 'properties']),
  group: new Set([...COMMON, 'groupId', 'traits']),
  alias: new Set([...COMMON, 'previousId']),
}
// The order src/serialized.rs decodes `kind` in.
const TRACK = 0
const IDENTIFY = 1
const PAGE = 2
const SCREEN = 3
const GROUP = 4
const ALIAS = 5

/// Messages queued on the fast path before they are handed over without waiting for the tick
/// to end: bounds the memory and the delay of a long synchronous loop of captures. In a worker
/// thread every message is handed over at once: `worker.terminate()` stops a worker's
/// JavaScript without an `exit` event, and only what the native side holds survives that.
const MAX_PENDING = isMainThread ? 1000 : 1
/// Above this estimated size (UTF-16 units of strings, with room for escaping) a message takes
/// the exact path, where the core enforces its 32 KiB limit with a precise error.
const FAST_PATH_MAX_SIZE = 4096
/// Nesting deeper than this takes the exact path (which reports cycles).
const FAST_PATH_MAX_DEPTH = 16
/// Dates the wire format can carry (RFC 3339, years 1970 to 9999), in epoch milliseconds.
const MAX_TIME = 253402300799999

function invalid(message, field) {
  const error = new TypeError(message)
  error.code = 'PULSELINE_INVALID_MESSAGE'
  if (field !== undefined) error.field = field
  return error
}

function check(method, message) {
  if (typeof message !== 'object' || message === null || Array.isArray(message)) {
    throw invalid(`client.${method}() takes a message object, e.g. client.${method}({ userId: 'user-42', ... })`)
  }
  const allowed = FIELDS[method]
  for (const key in message) {
    if (!allowed.has(key)) {
      throw invalid(`client.${method}(): unknown field ${JSON.stringify(key)}; the fields are ${[...allowed].slice(6).concat(COMMON).join(', ')}`, key)
    }
  }
}

/// Estimated JSON size of a value `JSON.stringify` serializes exactly as the native converter
/// does, or -1 when unsure (the exact path decides).
function size(value, depth) {
  switch (typeof value) {
    case 'string':
      return value.length + 2
    case 'number':
      return Number.isFinite(value) ? 24 : -1
    case 'boolean':
      return 5
    case 'undefined':
      return 0
    case 'object': {
      if (value === null) return 4
      if (depth >= FAST_PATH_MAX_DEPTH) return -1
      let n = 2
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          const s = size(value[i], depth + 1)
          if (s < 0) return -1
          n += s + 1
        }
        return n
      }
      const proto = Object.getPrototypeOf(value)
      if (proto === Date.prototype) return Number.isFinite(value.getTime()) ? 26 : -1
      if (proto !== Object.prototype && proto !== null) return -1
      for (const key in value) {
        const s = size(value[key], depth + 1)
        if (s < 0) return -1
        n += s + key.length + 4
      }
      return n
    }
    default: // function, symbol, bigint
      return -1
  }
}

/// A plain object's size for the fast path, or -1; `undefined`/`null` count as absent.
function objectSize(value) {
  if (value === undefined || value === null) return 0
  if (typeof value !== 'object' || Object.getPrototypeOf(value) !== Object.prototype) return -1
  return size(value, 1)
}

/// An optional id for the fast path: absent, or a non-empty string.
function idOk(value) {
  return value === undefined || value === null || (typeof value === 'string' && value !== '')
}

/// Epoch milliseconds of a message's timestamp for the fast path, or NaN.
function timeOf(value) {
  let ms
  if (value === undefined || value === null) return Date.now()
  if (typeof value === 'number') ms = value
  else if (typeof value === 'string') ms = Date.parse(value)
  else if (value instanceof Date) ms = value.getTime()
  else return NaN
  return ms >= 0 && ms <= MAX_TIME ? ms : NaN
}

class Client extends native.Client {
  #pending = []
  #scheduled = false
  #handOver = () => {
    this.#scheduled = false
    this.#drain()
  }

  constructor(options) {
    super(options)
    if (this.flushOnExit) watch(this)
  }

  /// Queues a checked message on the fast path; false when the exact path must take it.
  #fast(kind, m, text, textRequired, payload) {
    const { userId, anonymousId, context, integrations } = m
    if (m.messageId !== undefined || !idOk(userId) || !idOk(anonymousId)) return false
    if ((userId ?? anonymousId ?? null) === null) return false
    if (text === undefined || text === null) {
      if (textRequired) return false
      text = null
    } else if (typeof text !== 'string' || text === '') return false
    const at = timeOf(m.timestamp)
    if (Number.isNaN(at)) return false
    const p = objectSize(payload)
    const c = objectSize(context)
    const i = objectSize(integrations)
    if (p < 0 || c < 0 || i < 0 || p + c + i > FAST_PATH_MAX_SIZE) return false
    this.#pending.push([
      kind,
      userId ?? null,
      anonymousId ?? null,
      at,
      text,
      // Shallow copies: changing the object's fields after the call does not change the event.
      p > 0 ? { ...payload } : null,
      c > 0 ? { ...context } : null,
      i > 0 ? { ...integrations } : null,
    ])
    if (this.#pending.length >= MAX_PENDING) this.#drain()
    else if (!this.#scheduled) {
      this.#scheduled = true
      queueMicrotask(this.#handOver)
    }
    return true
  }

  /// Hands the fast path's queue to the native side; before anything that must see it.
  #drain() {
    if (this.#pending.length === 0) return
    const json = JSON.stringify(this.#pending)
    this.#pending = []
    const problem = super.captureSerialized(json)
    if (problem !== null && problem !== undefined) process.emitWarning(problem, 'PulselineWarning')
  }

  track(m) {
    check('track', m)
    if (this.#fast(TRACK, m, m.event, true, m.properties)) return
    this.#drain()
    super.track(m.userId, m.anonymousId, m.timestamp, m.context, m.integrations, m.messageId, m.event, m.properties)
  }

  identify(m) {
    check('identify', m)
    if (this.#fast(IDENTIFY, m, undefined, false, m.traits)) return
    this.#drain()
    super.identify(m.userId, m.anonymousId, m.timestamp, m.context, m.integrations, m.messageId, m.traits)
  }

  page(m) {
    check('page', m)
    if (this.#fast(PAGE, m, m.name, false, m.properties)) return
    this.#drain()
    super.page(m.userId, m.anonymousId, m.timestamp, m.context, m.integrations, m.messageId, m.name, m.properties)
  }

  screen(m) {
    check('screen', m)
    if (this.#fast(SCREEN, m, m.name, false, m.properties)) return
    this.#drain()
    super.screen(m.userId, m.anonymousId, m.timestamp, m.context, m.integrations, m.messageId, m.name, m.properties)
  }

  group(m) {
    check('group', m)
    if (this.#fast(GROUP, m, m.groupId, true, m.traits)) return
    this.#drain()
    super.group(m.userId, m.anonymousId, m.timestamp, m.context, m.integrations, m.messageId, m.groupId, m.traits)
  }

  alias(m) {
    check('alias', m)
    if (typeof m.userId === 'string' && this.#fast(ALIAS, m, m.previousId, true, undefined)) return
    this.#drain()
    super.alias(m.userId, m.anonymousId, m.timestamp, m.context, m.integrations, m.messageId, m.previousId)
  }

  flush(timeoutMs) {
    this.#drain()
    return super.flush(timeoutMs)
  }

  flushSync(timeoutMs) {
    this.#drain()
    return super.flushSync(timeoutMs)
  }

  shutdown(timeoutMs) {
    this.#drain()
    return super.shutdown(timeoutMs)
  }

  shutdownSync(timeoutMs) {
    this.#drain()
    return super.shutdownSync(timeoutMs)
  }

  stats() {
    this.#drain()
    return super.stats()
  }
}

module.exports = { Client, default: Client }
