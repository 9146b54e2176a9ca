/**
 * Route `POST /api/ratchet`: the app's durable functions, served to Ratchet only (every call
 * signed). In Next.js this file is `app/api/ratchet/route.ts`, and `POST` is its handler.
 */
import { createFunctionsHandler } from '@ratchet/orpc/functions'
import { functions } from '../functions'
import { appSecret } from '../ratchet'

export const POST = createFunctionsHandler(functions, { secret: appSecret() })
