// Compiled by `tsc --strict --noEmit` (scripts/test.sh, group node): correct usage compiles, and
// each `@ts-expect-error` line must fail to compile, or tsc reports the directive as unused.
import PulselineDefault, { Client } from '../../lib/index'
import type { ClientOptions, DropReason, FlushResult, PulselineError, ShutdownResult, Stats, TrackMessage } from '../../lib/index'

const options: ClientOptions = {
  writeKey: 'plw_123',
  host: 'http://127.0.0.1:8080',
  flushInterval: 250,
  maxBufferedEvents: 10_000,
  gzip: false,
  diskBuffer: true,
  diskBufferDirectory: '/tmp/pulseline',
  disabled: false,
  onError: (error: PulselineError) => {
    const status: number | undefined = error.status
    const code: string = error.code
    void status, code
  },
  onDrop: (reason: DropReason, count: number) => void [reason, count],
}
const client = new Client(options)
const same: Client = new PulselineDefault({ writeKey: 'plw_123' })

const nothing: void = client.track({ userId: 'user-42', event: 'signup', properties: { plan: 'pro', at: new Date(), n: 1n } })
const message: TrackMessage = { anonymousId: 'anon-7', event: 'viewed', timestamp: new Date(), context: { ip: '127.0.0.1' } }
client.track(message)
client.track({ userId: 42, event: 'numeric id', timestamp: '2026-01-01T00:00:00Z', messageId: '0190b2a4-7c1e-7d4f-9a51-3c2f7e8b9d10' })
client.identify({ userId: 'user-42', traits: { email: 'ada@example.com' } })
client.page({ userId: 'user-42', name: 'Pricing', properties: { path: '/pricing' } })
client.screen({ anonymousId: 'anon-7', name: 'Settings' })
client.group({ userId: 'user-42', groupId: 'acme', traits: { seats: 12 } })
client.alias({ userId: 'user-42', previousId: 'anon-7' })

async function lifecycle(): Promise<void> {
  const flushed: FlushResult = await client.flush()
  const status: 'flushed' | 'persisted' | 'dropped' | 'timed_out' | 'closed' = flushed.status
  // @ts-expect-error `dropped` is a status of its own: code that only knew 'flushed' must handle it
  const known: 'flushed' | 'persisted' | 'timed_out' | 'closed' = flushed.status
  await client.flush(1000)
  const stats: Stats = client.stats()
  client.optOut()
  client.optIn()
  const privacy: [boolean, boolean, number] = [client.optedOut, client.disabled, stats.dropped.optedOut]
  void privacy
  const sent: number = stats.sent + stats.dropped.queueFull
  const done: ShutdownResult = await same.shutdown(5000)
  const complete: boolean = done.complete
  void status, known, sent, complete, nothing
}
void lifecycle

// @ts-expect-error writeKey is required
new Client({ host: 'http://127.0.0.1:8080' })
// @ts-expect-error options are typed (a number of milliseconds)
new Client({ writeKey: 'k', flushInterval: '250ms' })
// @ts-expect-error unknown options are refused
new Client({ writeKey: 'k', maxQueueSize: 10 })
// @ts-expect-error track takes a message object, not positional arguments
client.track('user-42', 'signup')
// @ts-expect-error event is required
client.track({ userId: 'user-42' })
// @ts-expect-error properties is an object
client.track({ userId: 'user-42', event: 'e', properties: 'plan=pro' })
// @ts-expect-error unknown message fields are refused
client.track({ userId: 'user-42', event: 'e', userID: 'typo' })
// @ts-expect-error group needs a groupId
client.group({ userId: 'user-42' })
// @ts-expect-error flush resolves to a FlushResult, not a boolean
const wrong: Promise<boolean> = client.flush()
// @ts-expect-error stats() is not a promise
client.stats().then(() => {})
// @ts-expect-error the drop callback receives a DropReason
new Client({ writeKey: 'k', onDrop: (reason: number) => void reason })
void wrong
