/** `npm start -w examples/webapp`: the app on a local port (PORT, default 3000). */
import { serveFetch } from '@ratchet/orpc/node'
import { app } from './app'

const { url } = await serveFetch(app, { port: Number(process.env.PORT ?? 3000) })
console.log(`example web app on ${url} (procedures at ${url}/rpc, POST ${url}/checkout)`)
