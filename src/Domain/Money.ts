/**
 * Amounts of money, in USD, as people and programs read them.
 *
 * For people (`usd`): $1 and more with cents and thousands separators (`$1,234.50`); under $1 with
 * at least cents and three significant digits (`$0.015`, `$0.000084`, `$0.50`), because a limit
 * of $0.015 printed as `$0.01` reads as a different limit and most single requests cost less than a
 * cent.
 *
 * For programs (`json`): rounded to `JSON_DECIMALS` decimal places, a ten-billionth of a dollar.
 * That is finer than any price (the cheapest token rates are around $0.01 per 1M tokens, 1e-8 per
 * token) and coarse enough that sums of floats lose their noise: `0.00008399999999999998` becomes
 * `0.000084`. The ledger stores costs rounded the same way (`Pricing.computeCost`).
 */

/** Decimal places kept in JSON amounts (webhooks, `--json`). */
export const JSON_DECIMALS = 10
const SCALE = 10 ** JSON_DECIMALS

/** `usd` rounded to `JSON_DECIMALS` places, so it serialises without float noise. */
export const json = (usd: number): number => (Number.isFinite(usd) ? Math.round(usd * SCALE) / SCALE : usd)

/** `json` for a value that may be null. */
export const jsonOrNull = (usd: number | null | undefined): number | null => (usd === null || usd === undefined ? null : json(usd))

const CENTS = new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 })

/** The amount for a person: `$0`, `$0.015`, `$0.000084`, `$0.50`, `$12.30`, `$1,234.57`, `-$0.25`. */
export const usd = (value: number): string => {
  if (!Number.isFinite(value)) return `$${value}`
  const amount = Math.abs(json(value))
  const sign = value < 0 && amount > 0 ? "-" : ""
  if (amount === 0) return "$0"
  if (amount >= 1) return `${sign}$${CENTS.format(amount)}`
  // Three significant digits, never fewer than two decimals, trailing zeros beyond those dropped.
  const decimals = Math.min(JSON_DECIMALS, Math.max(2, Math.ceil(-Math.log10(amount)) + 2))
  let text = amount.toFixed(decimals)
  while (text.endsWith("0") && text.length - text.indexOf(".") - 1 > 2) text = text.slice(0, -1)
  return `${sign}$${text}`
}
