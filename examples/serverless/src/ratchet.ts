/** The app's typed Ratchet client: its URL and API key, and the functions' types. */
import { createClient } from '@ratchet/client'
import type { functions } from './functions'

export const ratchet = () =>
  createClient<typeof functions>({
    url: process.env.RATCHET_URL ?? 'http://127.0.0.1:8787',
    apiKey: process.env.RATCHET_API_KEY,
  })

/** The secret Ratchet signs its calls with (RATCHET_APP_SECRET, 32+ characters). */
export const appSecret = () => process.env.RATCHET_APP_SECRET ?? 'dev-app-secret-change-me-0123456789abcdef'
