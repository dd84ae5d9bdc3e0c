'use strict'
// The `pulseline` package (CommonJS entry). The class is the native one (sdk-node/src/client.rs,
// typed by the generated native/index.d.ts); this file adds what JavaScript does best:
// - the fast capture path: a message is checked here, a shallow copy of its payload is queued,
//   and at the end of the tick (or every MAX_PENDING messages) all of them are serialized by
//   one `JSON.stringify` and handed to the native side in one call (src/serialized.rs). A
//   capture call costs no Node-API work (figures: docs/benchmarks.md);
// - the exact path for anything that check is not sure of (ids given as numbers, a
//   `messageId`, `BigInt`, `Date`-less timestamps that don't parse, class instances, cycles,
//   functions, very large values): the message's fields, read here, are passed positionally to
//   the native method, which converts each value and throws a precise TypeError;
// - the process exit hooks (exit.js).
const { isMainThread } = require('node:worker_threads')
const native = require('./binding.js')
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

/// What `size` may still count before it gives up (it counts down, so a walk stops after at
/// most FAST_PATH_MAX_SIZE units: shared references, a huge sparse array or a long-running
/// Proxy cost no more than a small message).
let room = 0

/// Estimated JSON size of a value `JSON.stringify` serializes exactly as the native converter
/// does, or -1 when unsure or above `room` (the exact path decides).
function size(value, depth) {
  switch (typeof value) {
    case 'string':
      return (room -= value.length + 2) < 0 ? -1 : value.length + 2
    case 'number':
      return Number.isFinite(value) && (room -= 24) >= 0 ? 24 : -1
    case 'boolean':
      return (room -= 5) < 0 ? -1 : 5
    case 'undefined':
      // `null` in an array, left out of an object: counted as `null` either way.
      return (room -= 4) < 0 ? -1 : 4
    case 'object': {
      if (value === null) return (room -= 4) < 0 ? -1 : 4
      if (depth >= FAST_PATH_MAX_DEPTH || (room -= 2) < 0) return -1
      let n = 2
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          const s = size(value[i], depth + 1)
          if (s < 0 || --room < 0) return -1
          n += s + 1
        }
        return n
      }
      const proto = Object.getPrototypeOf(value)
      if (proto === Date.prototype) {
        // An own `toJSON` would change what JSON.stringify writes: the exact path decides.
        if (Object.hasOwn(value, 'toJSON') || !Number.isFinite(value.getTime())) return -1
        return (room -= 24) < 0 ? -1 : 26
      }
      if (proto !== Object.prototype && proto !== null) return -1
      for (const key in value) {
        if (key === 'toJSON' || (room -= key.length + 4) < 0) return -1
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

/// The estimated size of a message's values, within FAST_PATH_MAX_SIZE, or -1.
function payloadSize(payload, context, integrations) {
  room = FAST_PATH_MAX_SIZE
  const p = objectSize(payload)
  if (p < 0) return -1
  const c = objectSize(context)
  if (c < 0) return -1
  const i = objectSize(integrations)
  return i < 0 ? -1 : p + c + i
}

/// A lone surrogate as `JSON.stringify` writes it (ES2019): a `\udXXX` escape after an even
/// number of backslashes. Well-formed pairs are written as they are, so every match is lone.
const LONE_SURROGATE = /(?<!\\)((?:\\\\)*)\\ud[89a-f][0-9a-f]{2}/g

/// The fast path's JSON with each lone surrogate escape replaced by U+FFFD, as the native
/// converter (Node-API's UTF-8) and the browser SDK write it: serde_json, here and in the
/// collector, refuses the escape, which would lose a message `track()` had accepted. The
/// substring test keeps the common case to one scan of the text.
function wellFormed(json) {
  return json.includes('\\ud') ? json.replace(LONE_SURROGATE, '$1\\ufffd') : json
}

/// The collector's limits, from the core (src/options.rs exports them).
const { MAX_ID_CHARS, MAX_EVENT_NAME_CHARS } = native

/// An optional id for the fast path: absent, or a non-empty string surely within the id limit
/// (UTF-16 units are never fewer than characters; a longer one takes the exact path, where the
/// core counts its characters and throws if it is too long).
function idOk(value) {
  return value === undefined || value === null || (typeof value === 'string' && value !== '' && value.length <= MAX_ID_CHARS)
}

/// The event, name, groupId or previousId for the fast path: surely within the collector's
/// limits (names are trimmed first, so a blank one takes the exact path too).
function textOk(kind, text) {
  if (kind === GROUP || kind === ALIAS) return text !== '' && text.length <= MAX_ID_CHARS
  return text.length <= MAX_EVENT_NAME_CHARS && text.trim() !== ''
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

/// A user callback that can never throw into the SDK: it runs on the event loop, where an
/// exception (or a rejected promise of an async callback) would crash the process. What it
/// threw is logged to stderr.
function guarded(name, callback) {
  if (typeof callback !== 'function') return callback
  const log = (error) => {
    try {
      console.error(`pulseline: the ${name} callback threw; ignored:`, error)
    } catch {}
  }
  return function (...args) {
    try {
      const result = callback.apply(this, args)
      if (result !== null && typeof result === 'object' && typeof result.then === 'function') result.then(undefined, log)
    } catch (error) {
      log(error)
    }
  }
}

/// The options with `onError`/`onDrop` guarded; anything but a plain object goes to the native
/// constructor unchanged, which says what is wrong with it.
function guardOptions(options) {
  if (typeof options !== 'object' || options === null) return options
  const { onError, onDrop } = options
  if (typeof onError !== 'function' && typeof onDrop !== 'function') return options
  return { ...options, onError: guarded('onError', onError), onDrop: guarded('onDrop', onDrop) }
}

class Client extends native.Client {
  #pending = []
  #scheduled = false
  #warned = false
  #handOver = () => {
    this.#scheduled = false
    this.#drain()
  }

  constructor(options) {
    super(guardOptions(options))
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
    } else if (typeof text !== 'string' || !textOk(kind, text)) return false
    const at = timeOf(m.timestamp)
    if (Number.isNaN(at)) return false
    // The ids and the text count too: a long `userId` or `event` takes the exact path, which
    // throws the RangeError of a message above 32 KiB.
    const ids = (userId?.length ?? 0) + (anonymousId?.length ?? 0) + (text?.length ?? 0)
    if (ids > FAST_PATH_MAX_SIZE) return false
    const p = payloadSize(payload, context, integrations)
    if (p < 0 || p + ids > FAST_PATH_MAX_SIZE) return false
    this.#pending.push([
      kind,
      userId ?? null,
      anonymousId ?? null,
      at,
      text,
      // Shallow copies: changing the object's fields after the call does not change the event.
      payload == null ? null : { ...payload },
      context == null ? null : { ...context },
      integrations == null ? null : { ...integrations },
    ])
    if (this.#pending.length >= MAX_PENDING) this.#drain()
    else if (!this.#scheduled) {
      this.#scheduled = true
      queueMicrotask(this.#handOver)
    }
    return true
  }

  /// Hands the fast path's queue to the native side; before anything that must see it. Never
  /// throws: it runs at the end of the tick, where an exception would kill the process. The
  /// queue holds shallow copies, so a nested value may have changed since its capture call (a
  /// cycle, a throwing getter or `toJSON`, a huge or widely shared structure): such a message
  /// is checked again, takes the exact path if the check is unsure, and is dropped, counted
  /// and reported to `onDrop` if it cannot be sent.
  #drain() {
    const pending = this.#pending
    if (pending.length === 0) return
    // Taken first, so a failure below can never leave a message queued to fail again.
    this.#pending = []
    const fast = []
    for (const entry of pending) {
      let p = -1
      try {
        p = payloadSize(entry[5], entry[6], entry[7])
      } catch {}
      if (p >= 0) fast.push(entry)
      else this.#exact(entry)
    }
    if (fast.length === 0) return
    let json
    try {
      json = JSON.stringify(fast)
    } catch {
      json = this.#stringifyEach(fast)
    }
    const problem = super.captureSerialized(wellFormed(json))
    if (problem !== null && problem !== undefined) this.#warn(problem)
  }

  /// `JSON.stringify` of each message alone, leaving out (and counting) those that throw.
  #stringifyEach(entries) {
    const parts = []
    for (const entry of entries) {
      try {
        parts.push(JSON.stringify(entry))
      } catch (error) {
        this.#dropped(false, error)
      }
    }
    return `[${parts.join(',')}]`
  }

  /// A queued message through the native converter, which stops at 32 KiB and names what is
  /// wrong; a message it refuses is dropped and counted.
  #exact([kind, u, a, at, text, p, c, i]) {
    try {
      switch (kind) {
        case TRACK: return super.track(u, a, at, c, i, undefined, text, p)
        case IDENTIFY: return super.identify(u, a, at, c, i, undefined, p)
        case PAGE: return super.page(u, a, at, c, i, undefined, text, p)
        case SCREEN: return super.screen(u, a, at, c, i, undefined, text, p)
        case GROUP: return super.group(u, a, at, c, i, undefined, text, p)
        default: return super.alias(u, a, at, c, i, undefined, text)
      }
    } catch (error) {
      this.#dropped(error?.code === 'PULSELINE_MESSAGE_TOO_LARGE', error)
    }
  }

  #dropped(tooLarge, error) {
    super.recordDropped(tooLarge, 1)
    let why
    try {
      why = String(error?.message ?? error)
    } catch {
      why = 'its value threw' // A Symbol or a Proxy: what was thrown cannot be shown.
    }
    this.#warn(`pulseline: a message changed after its capture call could not be sent and was dropped: ${why}`)
  }

  /// One warning per client: a loop of bad messages must not flood stderr (`stats()` and
  /// `onDrop` count every one).
  #warn(text) {
    if (this.#warned) return
    this.#warned = true
    try {
      process.emitWarning(text, 'PulselineWarning')
    } catch {}
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

  // Messages captured earlier in this tick were captured while opted in (or out): hand them
  // over before the switch, so the choice applies from the call on, not from the tick's end.
  optOut() {
    this.#drain()
    super.optOut()
  }

  optIn() {
    this.#drain()
    super.optIn()
  }
}

// The core's option table and id limits, as the typings (native/index.d.ts) declare them.
const { optionTable } = native
module.exports = { Client, default: Client, optionTable, MAX_ID_CHARS, MAX_EVENT_NAME_CHARS }
