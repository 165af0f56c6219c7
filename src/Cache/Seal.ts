/**
 * How a cached answer is kept outside the process (the SQLite/Postgres tier, the Redis tier): its
 * JSON gzip'd, then, with `cache.encrypt`, sealed with AES-256-GCM under TOLLGATE_CACHE_KEY. Every
 * tier outside memory stores exactly these bytes, so no tier holds a plaintext body when
 * encryption is configured.
 */
import * as Option from "effect/Option"
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto"
import { gunzipSync, gzipSync } from "node:zlib"
import type { CachedAnswer } from "./Answer.js"

/** iv (12) | tag (16) | ciphertext */
const encrypt = (key: Uint8Array, plain: Uint8Array): Uint8Array => {
  const iv = randomBytes(12)
  const cipher = createCipheriv("aes-256-gcm", key, iv)
  const body = Buffer.concat([cipher.update(plain), cipher.final()])
  return Buffer.concat([iv, cipher.getAuthTag(), body])
}

const decrypt = (key: Uint8Array, data: Uint8Array): Uint8Array => {
  const buffer = Buffer.from(data)
  const decipher = createDecipheriv("aes-256-gcm", key, buffer.subarray(0, 12))
  decipher.setAuthTag(buffer.subarray(12, 28))
  return Buffer.concat([decipher.update(buffer.subarray(28)), decipher.final()])
}

export interface Sealer {
  readonly seal: (answer: CachedAnswer) => Uint8Array
  /** Throws on bytes that are corrupt or sealed under another key (the caller treats that as a miss). */
  readonly open: (data: Uint8Array) => CachedAnswer
}

/** Seals under `key` when there is one (`cache.encrypt`), else gzip alone. */
export const make = (key: Option.Option<Uint8Array>): Sealer => ({
  seal: (answer) => {
    const packed = gzipSync(JSON.stringify(answer))
    return Option.isSome(key) ? encrypt(key.value, packed) : packed
  },
  open: (data) => JSON.parse(gunzipSync(Option.isSome(key) ? decrypt(key.value, data) : data).toString("utf8")) as CachedAnswer
})
