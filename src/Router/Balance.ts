/**
 * Weighted load balancing with a seeded random source, so one seed always gives one order (tests,
 * `route explain`) while the proxy draws a fresh seed per request.
 */

/** mulberry32: a small, fast 32-bit PRNG; uniform floats in [0, 1). */
export const seeded = (seed: number): () => number => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * Orders `items` by successive weighted draws without replacement: the first is `i` with
 * probability weight(i) / total, the second is drawn from the rest, and so on.
 */
export const weightedOrder = <A>(items: ReadonlyArray<A>, weightOf: (a: A) => number, random: () => number): Array<A> => {
  const pool = [...items]
  const out: Array<A> = []
  while (pool.length > 0) {
    const total = pool.reduce((sum, a) => sum + weightOf(a), 0)
    let x = random() * total
    let index = pool.length - 1
    for (let i = 0; i < pool.length; i++) {
      x -= weightOf(pool[i]!)
      if (x < 0) {
        index = i
        break
      }
    }
    out.push(pool.splice(index, 1)[0]!)
  }
  return out
}
