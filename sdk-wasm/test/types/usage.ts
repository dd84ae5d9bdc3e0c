// Compiled with `tsc --strict --noEmit` against the generated dist/pulseline.d.ts: the package's
// public types as a TypeScript user sees them. Lines marked @ts-expect-error must stay errors.
import { init, type Client, type InitOptions, WEB_VITAL_EVENT } from '../../dist/pulseline.js'

const options: InitOptions = { writeKey: 'wk_123', host: 'https://collector.example.com', webVitals: false }

async function main(): Promise<void> {
  const pl: Client = await init(options)
  const id: string | undefined = pl.track('Signup', { plan: 'pro', seats: 3 })
  pl.page()
  pl.page('Pricing', { variant: 'b' })
  pl.identify('user-42', { email: 'ada@example.com' })
  const anonymous: string = pl.anonymousId
  const user: string | undefined = pl.userId
  const flushed: boolean = await pl.flush(5_000)
  pl.reset()
  const name: 'Web Vital' = WEB_VITAL_EVENT
  void [id, anonymous, user, flushed, name]

  // @ts-expect-error writeKey is required
  await init({ host: 'https://collector.example.com' })
  // @ts-expect-error properties are an object
  pl.track('Signup', 42)
  // @ts-expect-error flush resolves to a boolean
  const wrong: string = await pl.flush()
  void wrong
}
void main
