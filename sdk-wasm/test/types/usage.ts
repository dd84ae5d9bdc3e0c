// Compiled with `tsc --strict --noEmit` against the generated dist/pulseline.d.ts: the package's
// public types as a TypeScript user sees them. Lines marked @ts-expect-error must stay errors.
import {
  init, type Client, type InitOptions, WEB_VITAL_EVENT, OUTBOUND_LINK_EVENT, FILE_DOWNLOAD_EVENT,
  FILE_DOWNLOAD_EXTENSIONS, CONSENT_QUEUE_MAX,
} from '../../dist/pulseline.js'

const options: InitOptions = {
  writeKey: 'wk_123',
  host: 'https://collector.example.com',
  webVitals: false,
  trackPageViews: 'history',
  trackHashChanges: true,
  trackOutboundLinks: true,
  trackFileDownloads: ['pdf', 'zip'],
  consent: 'pending',
  cookieless: true,
  respectGpc: true,
  respectDnt: false,
}

async function main(): Promise<void> {
  const pl: Client = await init(options)
  const id: string | undefined = pl.track('Signup', { plan: 'pro', seats: 3 })
  pl.page()
  pl.page('Pricing', { variant: 'b' })
  pl.identify('user-42', { email: 'ada@example.com' })
  pl.group('acme', { plan: 'enterprise' })
  pl.alias('user-42')
  pl.alias('user-42', 'anon-1')
  pl.grantConsent()
  pl.denyConsent()
  pl.optOut()
  pl.optIn()
  const anonymous: string | undefined = pl.anonymousId
  const user: string | undefined = pl.userId
  const flushed: boolean = await pl.flush(5_000)
  pl.reset()
  const name: 'Web Vital' = WEB_VITAL_EVENT
  const outbound: 'Outbound Link: Click' = OUTBOUND_LINK_EVENT
  const download: 'File Download' = FILE_DOWNLOAD_EVENT
  const extensions: readonly string[] = FILE_DOWNLOAD_EXTENSIONS
  const queued: number = CONSENT_QUEUE_MAX
  void [id, anonymous, user, flushed, name, outbound, download, extensions, queued]
  await init({ writeKey: 'wk_123', trackPageViews: false, consent: 'denied', trackFileDownloads: true })

  // @ts-expect-error writeKey is required
  await init({ host: 'https://collector.example.com' })
  // @ts-expect-error trackPageViews is 'history', 'load' or false
  await init({ writeKey: 'wk_123', trackPageViews: 'hash' })
  // @ts-expect-error consent is 'granted', 'pending' or 'denied'
  await init({ writeKey: 'wk_123', consent: true })
  // @ts-expect-error properties are an object
  pl.track('Signup', 42)
  // @ts-expect-error flush resolves to a boolean
  const wrong: string = await pl.flush()
  void wrong
}
void main
