'use strict'
// The `pulseline` package (CommonJS entry). The class is the native one (sdk-node/src/client.rs);
// this file adds what only JavaScript can do: the process exit hooks.
const native = require('../native/index.js')
const { watch } = require('./exit.js')

/** @see {import('../native/index').Client} */
class Client extends native.Client {
  constructor(options) {
    super(options)
    if (this.flushOnExit) watch(this)
  }
}

module.exports = { Client }
module.exports.Client = Client
module.exports.default = Client
