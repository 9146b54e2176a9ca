/**
 * Route `/rpc/*`: the app's procedures, served to Ratchet only. A serverless platform would
 * call this default export with each request; so does ../serve.ts locally.
 */
import { createRatchetFetchHandler } from '@ratchet/orpc/app'
import { router } from '../router'

export default createRatchetFetchHandler(router, {
  secret: process.env.WEBAPP_SECRET ?? 'dev-secret-change-me-0123456789abcdef',
  prefix: '/rpc',
})
