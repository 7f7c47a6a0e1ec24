/**
 * Private: the float32 logarithm, sine and cosine of PyTorch's CPU `randn` (its AVX2 kernel `normal_fill_16_AVX2` calls
 * `log256_ps` and `sincos256_ps` from aten/src/ATen/native/cpu/avx_mathfun.h, Cephes polynomials in float32), one value
 * at a time, so that lib/core/torch_generator.ts reproduces its bits. Every operation is rounded to float32 as the
 * AVX2 code rounds it; where GCC (PyTorch 1.13 is built with GCC 12, `-mavx2 -mfma`, and GCC contracts a product
 * followed by a sum into one fused multiply-add) fuses, the product is not rounded (see `fmaFloat32`).
 *
 * | avx_mathfun.h              | here                    | meaning                                                 |
 * |----------------------------|-------------------------|---------------------------------------------------------|
 * | `log256_ps(x)`             | `logAvx2(x)`            | ln x = e ln 2 + ln m, m in [sqrt(1/2), sqrt(2))          |
 * | `cephes_log_p0..p8`        | `LOG_P`                 | ln(1 + t) = t - t^2/2 + t^3 P(t), P of degree 8          |
 * | `cephes_log_q1 + q2`       | `LOG_Q1`, `LOG_Q2`      | ln 2 split in two float32 parts (q2 exact in 9 bits)     |
 * | `sincos256_ps(x, &s, &c)`  | `sinCosAvx2(x, out)`    | x = j pi/4 + r, |r| <= pi/4, j even                      |
 * | `cephes_FOPI`              | `FOUR_OVER_PI`          | 4/pi in float32                                          |
 * | `minus_cephes_DP1..DP3`    | `MINUS_DP1..3`          | -pi/4 split in three float32 parts                       |
 * | `coscof_p0..p2`            | `COS_P`                 | cos r = 1 - r^2/2 + r^4 C(r^2)                           |
 * | `sincof_p0..p2`            | `SIN_P`                 | sin r = r + r^3 S(r^2)                                   |
 *
 * Which products GCC fuses into the following sum was settled against PyTorch's own output, not assumed: with every
 * contractible product fused, 2^25 consecutive draws of `torch.randn` (seed 7) and every case of
 * test/fixtures/torch-randn-bits.json match bit for bit; leaving any single one of them unfused (each Horner step of
 * the logarithm, its y t^2 + e q1, the last part of the reduction r, the cosine's and sine's steps), or fusing the
 * other product of a sum of two, changes at least one of those draws (the sine's last step 68608 of the first 2^23).
 * Only the first two parts of the reduction r cannot tell, since their products are exact.
 *
 * @module
 */

const f32 = Math.fround;

/**
 * A float32 fused multiply-add a b + c (one rounding) evaluated in float64: the product of two float32 values is exact
 * in float64, so the only question is the float64 rounding of the sum before the float32 one. That double rounding
 * can change the result, but only when the float64 sum lands exactly halfway between two float32 values; for the
 * operands `logAvx2` and `sinCosAvx2` meet on every 24-bit uniform (2^24 values of 1 - u and of 2 pi u each)
 * it never does, which test/core/avx_mathfun.test.ts checks against a correctly rounded fused multiply-add.
 *
 * fma(a, b, c) = float32(a b + c)
 *
 * @param a float32 factor
 * @param b float32 factor
 * @param c float32 addend
 * @returns a b + c rounded once to float32 (for the operands described above)
 */
export function fmaFloat32(a: number, b: number, c: number): number {
  return f32(a * b + c);
}

/** A float32 fused multiply-add, a b + c rounded once. */
export type FusedMultiplyAdd = (a: number, b: number, c: number) => number;

const SQRT_HALF = f32(0.707106781186547524);
const LOG_P = new Float64Array([
  7.0376836292e-2,
  -1.1514610310e-1,
  1.1676998740e-1,
  -1.2420140846e-1,
  1.4249322787e-1,
  -1.6668057665e-1,
  2.0000714765e-1,
  -2.4999993993e-1,
  3.3333331174e-1,
].map(f32));
const LOG_Q1 = f32(-2.12194440e-4);
const LOG_Q2 = f32(0.693359375);
const FOUR_OVER_PI = f32(1.27323954473516);
const MINUS_DP1 = f32(-0.78515625);
const MINUS_DP2 = f32(-2.4187564849853515625e-4);
const MINUS_DP3 = f32(-3.77489497744594108e-8);
const SIN_P = new Float64Array([-1.9515295891e-4, 8.3321608736e-3, -1.6666654611e-1].map(f32));
const COS_P = new Float64Array([2.443315711809948e-5, -1.388731625493765e-3, 4.166664568298827e-2].map(f32));

const bitsBuffer = new ArrayBuffer(4);
const bitsFloat = new Float32Array(bitsBuffer);
const bitsInt = new Int32Array(bitsBuffer);

/**
 * The natural logarithm of a float32 exactly as PyTorch's `log256_ps` computes it in each AVX2 lane.
 *
 * x = 2^e m with m in [sqrt(1/2), sqrt(2)), t = m - 1: ln x = t + (t^3 P(t) + e q1 - t^2/2) + e q2
 *
 * @param x a positive normal float32 (in `randn`, 1 - u in [2^-24, 1])
 * @param fma the fused multiply-add (default `fmaFloat32`; a test passes a correctly rounded one)
 * @returns ln x as a float32
 * @example
 * ```ts
 * import { logAvx2 } from "./_avx_mathfun.ts";
 * const y = logAvx2(Math.fround(0.5));
 * // ln(1/2) = -0.693147180559945..., within one float32 ulp (2^-24 at this size)
 * if (Math.abs(y - Math.log(0.5)) > 2 ** -24) throw new Error(`got ${y}`);
 * ```
 */
export function logAvx2(x: number, fma: FusedMultiplyAdd = fmaFloat32): number {
  // 1. exponent and mantissa: x = 2^(e - 1) (2 m'), m' in [1/2, 1) from the float32 fields
  bitsFloat[0] = x;
  const bits = bitsInt[0];
  let e = (bits >>> 23) - 126;
  bitsInt[0] = (bits & ~0x7f800000) | 0x3f000000;
  const m = bitsFloat[0];
  // 2. m' < sqrt(1/2): use 2 m' and one exponent less, so t = m - 1 lies in [sqrt(1/2) - 1, sqrt(2) - 1)
  const below = m < SQRT_HALF;
  if (below) e -= 1;
  const t = f32(f32(m - 1) + (below ? m : 0));
  const t2 = f32(t * t);
  // 3. P(t) by Horner's rule, every step one fused multiply-add
  let y = LOG_P[0];
  for (let k = 1; k < 9; k++) y = fma(y, t, LOG_P[k]);
  y = f32(y * t);
  // 4. t^3 P(t) + e q1 (the product y t^2 fused), then - t^2/2 (exact halving), + t, + e q2 (exact product)
  y = fma(y, t2, f32(e * LOG_Q1));
  y = f32(y - t2 * 0.5);
  return f32(f32(t + y) + e * LOG_Q2);
}

/**
 * Sine and cosine of a float32 exactly as PyTorch's `sincos256_ps` computes them in each AVX2 lane.
 *
 * x = j pi/4 + r with j = 2 round(x 2/pi ...) even, |r| <= pi/4; sin and cos of r from two polynomials, swapped and
 * signed by j mod 8
 *
 * @param x a float32 with 0 <= x < 8192 (in `randn`, theta = 2 pi u)
 * @param out receives [sin x, cos x] as float32 values
 * @param fma the fused multiply-add (default `fmaFloat32`; a test passes a correctly rounded one)
 * @returns out
 * @example
 * ```ts
 * import { sinCosAvx2 } from "./_avx_mathfun.ts";
 * const [sin, cos] = sinCosAvx2(Math.fround(1), [0, 0]);
 * // sin 1 = 0.8414709848..., cos 1 = 0.5403023058..., each within two float32 ulps (2^-23 at this size)
 * if (Math.abs(sin - Math.sin(1)) > 2 ** -23 || Math.abs(cos - Math.cos(1)) > 2 ** -23) {
 *   throw new Error(`got ${sin}, ${cos}`);
 * }
 * ```
 */
export function sinCosAvx2<T extends number[] | Float64Array>(
  x: number,
  out: T,
  fma: FusedMultiplyAdd = fmaFloat32,
): T {
  // 1. the even octant j = (trunc(x 4/pi) + 1) & ~1, and the reduced argument r = x - j pi/4 in three parts (the first
  //    two products are exact, so whether they are fused does not matter)
  let j = f32(x * FOUR_OVER_PI) | 0;
  j = (j + 1) & ~1;
  let r = f32(x + j * MINUS_DP1);
  r = f32(r + j * MINUS_DP2);
  r = fma(j, MINUS_DP3, r);
  const r2 = f32(r * r);
  // 2. cos r = 1 - r^2/2 + r^4 C(r^2): the last product fused with the subtraction of r^2/2
  let cos = fma(COS_P[0], r2, COS_P[1]);
  cos = fma(cos, r2, COS_P[2]);
  cos = f32(cos * r2);
  cos = fma(cos, r2, -(r2 * 0.5));
  cos = f32(cos + 1);
  // 3. sin r = r + r^3 S(r^2): the last step one fused multiply-add
  let sin = fma(SIN_P[0], r2, SIN_P[1]);
  sin = fma(sin, r2, SIN_P[2]);
  sin = f32(sin * r2);
  sin = fma(sin, r, r);
  // 4. swap where j = 2 mod 4 and set the signs: sin is negated for j & 4 (x >= 0), cos for (j - 2) & 4 clear
  const swap = (j & 2) !== 0;
  const sinX = swap ? cos : sin;
  const cosX = swap ? sin : cos;
  out[0] = (j & 4) !== 0 ? -sinX : sinX;
  out[1] = ((j - 2) & 4) === 0 ? -cosX : cosX;
  return out;
}
