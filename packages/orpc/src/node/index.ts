export { serveFetch } from './serve-fetch'
