/**
 * `npm start`: the ssoflow web demo on http://localhost:3000 (PORT to change it). Runs with no
 * other service: Hono on Node, PGlite through ssoflow/kysely, an in-process OpenID provider.
 */
import { startDemo } from './app.js'

const port = Number(process.env.PORT ?? 3000)
const demo = await startDemo({ port })
process.stdout.write(
  `\nssoflow demo: open ${demo.url}\n  (Demo OpenID provider at ${demo.op.issuer}, Demo SAML IdP at ${demo.samlIdp.ssoUrl}; Ctrl-C to stop)\n\n`,
)
const stop = () => {
  void demo.close().finally(() => process.exit(0))
}
process.on('SIGINT', stop)
process.on('SIGTERM', stop)
