// Properties and traits to JSON text by the core's rules, as the Node SDK converts them
// (sdk-node/src/convert.rs): the same types accepted and refused, the core's messages and paths
// (sdk-core/src/conversion.rs: `ConversionFailure::message`, `JsonPath::render`, `Depth`), and
// the 32 KiB budget charged as the Node SDK charges it, during the walk, so a structure shared
// many ways stops at the limit instead of expanding. Written here rather than in the wasm: it
// reads page values at every step, and in JavaScript that costs no glue and no wasm bytes.
// DOM-free: test/convert.test.mjs runs it in Node against the core's table of cases.

/** The core's `limits::MAX_MESSAGE_BYTES`. */
const MAX_MESSAGE_BYTES = 32768
/** The core's `limits::MAX_JSON_DEPTH`: more levels of arrays and objects is taken for a cycle. */
const MAX_JSON_DEPTH = 64
const SUPPORTED = 'plain objects, arrays, strings, numbers, booleans, null, Date, BigInt'
const BINARY = ' (send an encoding, e.g. base64)'
const NO_JSON = ' no JSON representation'
/**
 * Objects of these types (by `Object.prototype.toString`) have no JSON form.
 * @type {Record<string, string | undefined>}
 */
const REFUSED = /** @type {any} */ ({
  __proto__: null,
  Map: 'a Map (send Object.fromEntries(map))',
  Set: 'a Set (send [...set])',
  WeakMap: 'a WeakMap',
  WeakSet: 'a WeakSet',
  ArrayBuffer: 'an ArrayBuffer' + BINARY,
  SharedArrayBuffer: 'an ArrayBuffer' + BINARY,
  DataView: 'a DataView',
  Promise: 'a Promise (await it first)',
})
// Read once: page code may replace them later. A `Date`'s time and a wrapper's value
// (`new Number(1)`) by the methods that throw for an object only claiming the type by its
// `Symbol.toStringTag`.
const tagOf = Object.prototype.toString
/** @type {Record<string, (() => unknown) | undefined>} */
const UNWRAP = Object.create(null)
for (const type of [Date, Number, String, Boolean, BigInt, Symbol]) {
  UNWRAP[type.name] = type == Date ? Date.prototype.getTime : type.prototype.valueOf
}
const utf8 = new TextEncoder()

/**
 * JSON text of `value` (`{}` for `undefined` or `null`), the `properties` or `traits` of a
 * message: `argument` names it in errors. The fields of `base` (a page's url, path, title…) are
 * written first, except those `value` has as its own. Throws an `Error` saying what cannot be
 * sent and where (`properties.items[2].price: NaN and infinities have no JSON representation`),
 * also when the page's code (a getter, a Proxy trap) throws while a value is read.
 * @param {string} argument
 * @param {unknown} value
 * @param {object} [base]
 * @returns {string}
 */
export function toJson(argument, value, base) {
  /** @type {(string | number)[]} keys and indexes down to the value being written */
  const path = []
  let written = 0
  /** @type {string | undefined} set by `fail`: the refusal, after its path */
  let refused

  /** @param {string} why @returns {never} */
  const fail = (why) => {
    refused = why
    throw refused
  }
  const unsupported = (/** @type {string} */ what) => fail(`${what} has${NO_JSON} (supported: ${SUPPORTED})`)
  /** Counts the bytes the Node SDK counts (each value's smallest JSON form, string lengths). */
  const charge = (/** @type {number} */ bytes) => (written += bytes) > MAX_MESSAGE_BYTES && fail('')
  /** UTF-8 length; a string longer than the limit is refused before it is encoded. */
  const size = (/** @type {string} */ s) => s.length > MAX_MESSAGE_BYTES ? fail('') : utf8.encode(s).length
  /** A JSON string; a lone surrogate is U+FFFD, as Node-API reads it. */
  const text = (/** @type {string} */ s) => JSON.stringify(s.replace(/[\ud800-\udfff]/gu, '\ufffd'))
  /** @template T @param {string | number} segment @param {() => T} read @returns {T} */
  const at = (segment, read) => {
    path.push(segment)
    const result = read()
    path.pop()
    return result
  }
  const enter = (/** @type {number} */ depth) => depth < MAX_JSON_DEPTH ? depth + 1 : fail(
    `nested more than ${MAX_JSON_DEPTH} levels of arrays and objects (limits::MAX_JSON_DEPTH; a circular reference?)`)

  /** @param {any} v @param {number} depth arrays and objects around `v` @returns {string} */
  const walk = (v, depth) => {
    const type = typeof v
    charge(v == null || type == 'boolean' ? 4 : 1)
    if (v == null) return 'null'
    if (type == 'boolean') return String(v)
    if (type == 'number') return isFinite(v) ? JSON.stringify(v) : fail(`NaN and infinities have${NO_JSON}`)
    if (type == 'string') return charge(size(v) + 1), text(v)
    if (type == 'bigint') return v < -(2n ** 127n) || v >= 2n ** 128n ? fail('an integer wider than 128 bits') : String(v)
    if (type != 'object') unsupported(`a ${type == 'function' ? type : 'symbol'}`)
    if (Array.isArray(v)) {
      const inner = enter(depth)
      let out = ''
      for (let i = 0, n = v.length; i < n; i++) {
        charge(1)
        out += (i ? ',' : '') + at(i, () => walk(v[i], inner))
      }
      return `[${out}]`
    }
    const tag = tagOf.call(v).slice(8, -1)
    const unwrap = UNWRAP[tag]
    let inside
    try { inside = unwrap?.call(v) } catch { /* not a Date or wrapper: an object */ }
    if (inside !== undefined) {
      // A Date is its ISO 8601 text, without the charge or its own `toJSON`, as in the Node SDK.
      return tag != 'Date' ? walk(inside, depth) : inside === inside ? JSON.stringify(new Date(/** @type {number} */ (inside)).toISOString()) : fail('an invalid Date')
    }
    const what = REFUSED[tag] || (ArrayBuffer.isView(v) && `a typed array${BINARY}`)
    if (what) unsupported(what)
    const inner = enter(depth)
    const keys = Object.keys(v)
    let out = ''
    /** Own enumerable fields, less those whose value is `undefined`. */
    const fields = (/** @type {any} */ o, /** @type {string[]} */ names) => {
      for (const key of names) {
        const field = at(key, () => o[key])
        if (field === undefined) continue
        charge(size(key) + 3)
        out += `${out ? ',' : ''}${text(key)}:${at(key, () => walk(field, inner))}`
      }
    }
    if (base && !depth) fields(base, Object.keys(base).filter((key) => !keys.includes(key)))
    fields(v, keys)
    return `{${out}}`
  }

  try {
    return walk(value ?? {}, 0)
  } catch (error) {
    // The path, as `JsonPath::render`: identifiers after a dot, other keys as JSON strings in
    // brackets, indexes in brackets; more than 12 segments keep the first six and last four.
    const n = path.length
    let where = argument
    path.forEach((segment, i) => {
      if (n > 12 && i == 6) where += `…(${n - 10} more levels)…`
      if (n > 12 && i >= 6 && i < n - 4) return
      where += typeof segment == 'number' ? `[${segment}]`
        : /^[A-Za-z_$][\w$]*$/.test(segment) ? `.${segment}` : `[${text(segment)}]`
    })
    let thrown = ''
    try { thrown = String(error) } catch { /* its own toString threw too */ }
    throw new Error(refused === undefined ? `${where}: reading it threw ${thrown} (a getter or Proxy of the page's code)`
      : refused ? `${where}: ${refused}`
        : `message is above the ${MAX_MESSAGE_BYTES}-byte limit (conversion stopped at ${where}); trim properties or traits`)
  }
}
