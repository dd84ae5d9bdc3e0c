'use strict'
// The `pulseline` package (CommonJS entry). The class is the native one (sdk-node/src/client.rs,
// typed by the generated native/index.d.ts); this file adds what JavaScript does best:
// - reading the message object's fields (a JIT-compiled property read costs about a
//   nanosecond, a Node-API one tens) and passing them to the native method positionally, in the
//   order of `COMMON` in src/message.rs, after rejecting fields no message type has;
// - the process exit hooks (exit.js).
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

class Client extends native.Client {
  constructor(options) {
    super(options)
    if (this.flushOnExit) watch(this)
  }

  track(m) {
    check('track', m)
    return super.track(m.userId, m.anonymousId, m.timestamp, m.context, m.integrations, m.messageId, m.event, m.properties)
  }

  identify(m) {
    check('identify', m)
    return super.identify(m.userId, m.anonymousId, m.timestamp, m.context, m.integrations, m.messageId, m.traits)
  }

  page(m) {
    check('page', m)
    return super.page(m.userId, m.anonymousId, m.timestamp, m.context, m.integrations, m.messageId, m.name, m.properties)
  }

  screen(m) {
    check('screen', m)
    return super.screen(m.userId, m.anonymousId, m.timestamp, m.context, m.integrations, m.messageId, m.name, m.properties)
  }

  group(m) {
    check('group', m)
    return super.group(m.userId, m.anonymousId, m.timestamp, m.context, m.integrations, m.messageId, m.groupId, m.traits)
  }

  alias(m) {
    check('alias', m)
    return super.alias(m.userId, m.anonymousId, m.timestamp, m.context, m.integrations, m.messageId, m.previousId)
  }
}

module.exports = { Client, default: Client }
