// The conformance suite over real HTTP on 127.0.0.1, unchanged, against each framework adapter:
// Hono 4 (on @hono/node-server), Express 5 and Fastify 5.
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { getRequestListener } from '@hono/node-server'
import express from 'express'
import Fastify from 'fastify'
import { Hono } from 'hono'
import { ssoExpress } from '../../src/express/index.js'
import { ssoFastify } from '../../src/fastify/index.js'
import { ssoHono } from '../../src/hono/index.js'
import type { SsoHandler } from '../../src/http/index.js'
import type { Send } from './client.js'
import { conformanceSuite, type Mounted } from './conformance.js'
import type { World } from './world.js'

/** fetch over the socket, never following redirects. */
const send: Send = (request) => fetch(request, { redirect: 'manual' })

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

function closer(server: Server): () => Promise<void> {
  return () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    })
}

conformanceSuite('Hono 4 on @hono/node-server', async (build): Promise<Mounted> => {
  let world: World | null = null
  const app = new Hono()
  app.use((c, next) => ssoHono(world!.handler as unknown as SsoHandler<typeof c>)(c, next))
  app.get('/', (c) => c.text('home'))
  const server = createServer(getRequestListener(app.fetch))
  const origin = await listen(server)
  world = build(origin)
  return { world, origin, send, close: closer(server) }
})

conformanceSuite('Express 5', async (build): Promise<Mounted> => {
  let world: World | null = null
  const app = express()
  app.use((req, res, next) => ssoExpress(world!.handler as never)(req, res, next))
  app.use(express.urlencoded({ extended: false }))
  app.get('/', (_req, res) => {
    res.send('home')
  })
  const server = createServer(app)
  const origin = await listen(server)
  world = build(origin)
  return { world, origin, send, close: closer(server) }
})

conformanceSuite('Fastify 5', async (build): Promise<Mounted> => {
  // Our own server (so the origin is known before the routes are registered), Fastify's handler.
  let server: Server | null = null
  const app = Fastify({
    serverFactory: (handler) => {
      server = createServer(handler)
      return server
    },
  })
  const origin = await listen(server as unknown as Server)
  const world = build(origin)
  await app.register(ssoFastify, { handler: world.handler as never })
  app.get('/', async () => 'home')
  await app.ready()
  return {
    world,
    origin,
    send,
    close: async () => {
      ;(server as unknown as Server).closeAllConnections()
      await app.close()
    },
  }
})
