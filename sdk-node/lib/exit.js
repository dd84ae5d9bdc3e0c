'use strict'
// Exit safety. The native worker is its own thread and never keeps the event loop alive, so
// the process may end while events are still queued. These hooks deliver them:
// - `beforeExit` (the loop ran dry): an asynchronous flush, bounded by `shutdownTimeout`, once
//   per batch of new events (a flush keeps the loop busy, so `beforeExit` fires again after it);
// - `exit` (`process.exit()`, or after `beforeExit`): a synchronous shutdown through the native
//   side, which the Rust worker can finish while JavaScript is blocked; what it cannot deliver
//   in `shutdownTimeout` stays in the disk buffer for the next process;
// - SIGTERM, when nothing else handles it: the same synchronous shutdown, then the default
//   action (the process dies by the signal, as it would have without us). When the app handles
//   SIGTERM itself, its handler decides; the `exit` hook runs when it exits.
// Clients are held weakly: an abandoned client can still be garbage-collected.

const clients = new Set() // WeakRef<Client>
const flushedAt = new WeakMap() // Client -> `captured` count at its last beforeExit flush
let installed = false

function live() {
  const out = []
  for (const ref of clients) {
    const client = ref.deref()
    if (client === undefined) clients.delete(ref)
    else out.push(client)
  }
  return out
}

function onBeforeExit() {
  for (const client of live()) {
    const captured = client.stats().captured
    if (captured === (flushedAt.get(client) ?? 0)) continue
    flushedAt.set(client, captured)
    client.flush(client.shutdownTimeout).catch(() => {})
  }
}

function onExit() {
  for (const client of live()) {
    try {
      client.shutdownSync(client.shutdownTimeout)
    } catch {
      // Nothing can be reported any more; what was not delivered is in the disk buffer.
    }
  }
  clients.clear()
}

function onSigterm() {
  // Others listen too: they decide what SIGTERM means (usually a graceful shutdown that still
  // tracks events, then an exit, which runs `exit`). Alone: deliver, then restore the default
  // action and die by the signal, as the process would have without us.
  if (process.listenerCount('SIGTERM') > 1) return
  onExit()
  process.removeListener('SIGTERM', onSigterm)
  process.kill(process.pid, 'SIGTERM')
}

function watch(client) {
  clients.add(new WeakRef(client))
  if (installed) return
  installed = true
  process.on('beforeExit', onBeforeExit)
  process.on('exit', onExit)
  // Only the main thread receives signals.
  if (require('node:worker_threads').isMainThread) process.on('SIGTERM', onSigterm)
}

module.exports = { watch }
