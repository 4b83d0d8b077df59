// The three framework adapters over real HTTP on 127.0.0.1, for any world that has a handler:
// Hono 4 (on @hono/node-server), Express 5 and Fastify 5. Each mount builds the world once the
// origin is known and returns how to send requests and how to stop the server.
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

export interface MountedApp<W> {
  readonly world: W
  readonly origin: string
  readonly send: Send
  close(): Promise<void>
}

export type AppMount = <W extends { readonly handler: SsoHandler<unknown> }>(build: (origin: string) => W) => Promise<MountedApp<W>>

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

const hono: AppMount = async (build) => {
  let world: ReturnType<typeof build> | null = null
  const app = new Hono()
  app.use((c, next) => ssoHono(world!.handler as unknown as SsoHandler<typeof c>)(c, next))
  app.get('/', (c) => c.text('home'))
  const server = createServer(getRequestListener(app.fetch))
  const origin = await listen(server)
  world = build(origin)
  return { world, origin, send, close: closer(server) }
}

const expressMount: AppMount = async (build) => {
  let world: ReturnType<typeof build> | null = null
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
}

const fastify: AppMount = async (build) => {
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
}

/** Every adapter, by name. */
export const ADAPTERS: readonly (readonly [string, AppMount])[] = [
  ['Hono 4 on @hono/node-server', hono],
  ['Express 5', expressMount],
  ['Fastify 5', fastify],
]
