/** `npm start -w examples/serverless`: the app on a local port (PORT, default 3001). */
import { serveFetch } from '@ratchet/orpc/node'
import { app } from './app'

const { url } = await serveFetch(app, { port: Number(process.env.PORT ?? 3001) })
console.log(`example serverless app on ${url} (functions at ${url}/api/ratchet, POST ${url}/api/signup)`)
