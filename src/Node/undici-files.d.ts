// Types for the undici files `Node/Undici.ts` imports directly (undici types only its index).
declare module "undici/lib/dispatcher/pool.js" {
  import { Pool } from "undici"
  export default Pool
}

declare module "undici/lib/api/api-request.js" {
  import type { Dispatcher } from "undici"
  const request: (
    this: Dispatcher,
    options: Dispatcher.RequestOptions,
    callback: (error: Error | null, data: Dispatcher.ResponseData) => void
  ) => void
  export default request
}
