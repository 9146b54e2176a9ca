/**
 * The Ratchet server's tasks module for the example (RATCHET_TASKS): the app's durable
 * functions, learned from the app's signed manifest when the server starts. The app must be up.
 */
import { appFunctions } from '@ratchet/orpc'

export const tasks = await appFunctions({
  url: process.env.APP_FUNCTIONS_URL ?? 'http://127.0.0.1:3001/api/ratchet',
  secret: process.env.RATCHET_APP_SECRET ?? 'dev-app-secret-change-me-0123456789abcdef',
})
