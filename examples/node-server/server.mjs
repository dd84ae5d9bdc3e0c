// A small HTTP app using Pulseline: records signups and page views, and shuts down cleanly.
//
//   PULSELINE_WRITE_KEY=plw_... PULSELINE_HOST=http://127.0.0.1:8080 PORT=3000 node server.mjs
//   curl -X POST localhost:3000/signup -d '{"email":"ada@example.com","plan":"pro"}'
import { createServer } from 'node:http'
import { randomUUID } from 'node:crypto'

import { Client } from 'pulseline'

const analytics = new Client({
  writeKey: process.env.PULSELINE_WRITE_KEY ?? 'plw_example',
  host: process.env.PULSELINE_HOST ?? 'http://127.0.0.1:8080',
  onError: (error) => console.error(`analytics: ${error.code}: ${error.message}`),
})

async function body(request) {
  let text = ''
  for await (const chunk of request) text += chunk
  return text ? JSON.parse(text) : {}
}

function send(response, status, value) {
  response.writeHead(status, { 'content-type': 'application/json' })
  response.end(JSON.stringify(value))
}

const server = createServer(async (request, response) => {
  const url = new URL(request.url, 'http://localhost')
  try {
    if (request.method === 'POST' && url.pathname === '/signup') {
      const { email, plan = 'free' } = await body(request)
      if (typeof email !== 'string') return send(response, 400, { error: 'email is required' })
      const userId = `user-${randomUUID()}`
      analytics.identify({ userId, traits: { email, plan } })
      analytics.track({ userId, event: 'signup', properties: { plan, source: request.headers['user-agent'] ?? null } })
      return send(response, 201, { userId })
    }
    if (request.method === 'GET' && url.pathname.startsWith('/pages/')) {
      const userId = request.headers['x-user-id']
      analytics.page({
        ...(userId ? { userId } : { anonymousId: 'anonymous' }),
        name: url.pathname.slice('/pages/'.length),
        properties: { path: url.pathname, at: new Date() },
        context: { ip: request.socket.remoteAddress },
      })
      return send(response, 200, { page: url.pathname })
    }
    if (url.pathname === '/stats') return send(response, 200, analytics.stats())
    send(response, 404, { error: 'not found' })
  } catch (error) {
    send(response, 400, { error: error.message })
  }
})

server.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`)
})

// Stop accepting requests, deliver what was recorded, then exit.
process.once('SIGTERM', () => {
  server.close(async () => {
    const outcome = await analytics.shutdown()
    console.log(`analytics shut down: ${JSON.stringify(outcome)}`)
  })
})
