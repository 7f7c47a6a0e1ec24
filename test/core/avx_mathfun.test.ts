import { describe, expect, test } from "bun:test";
import { fmaFloat32, logAvx2, sinCosAvx2 } from "../../lib/core/_avx_mathfun.ts";

const TWO_POW_24 = 16777216;

/** x = n 2^e exactly, for a finite float64 x (n an integer). */
function toScaledInteger(x: number): [bigint, number] {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const bits = view.getBigUint64(0);
  const sign = bits >> 63n ? -1n : 1n;
  const exponentField = Number((bits >> 52n) & 0x7ffn);
  const fraction = bits & 0xfffffffffffffn;
  if (exponentField === 0) return [sign * fraction, -1074];
  return [sign * (fraction | (1n << 52n)), exponentField - 1075];
}

/**
 * a b + c rounded once to float32 (to nearest, ties to even), in exact integer arithmetic: the reference for the two
 * fused multiply-adds below. Only for results in float32's normal range, which the cases here keep to.
 */
function fmaExactRational(a: number, b: number, c: number): number {
  const [na, ea] = toScaledInteger(a);
  const [nb, eb] = toScaledInteger(b);
  const [nc, ec] = toScaledInteger(c);
  const productExponent = ea + eb;
  const exponent = Math.min(productExponent, ec);
  const sum = na * nb * (1n << BigInt(productExponent - exponent)) + nc * (1n << BigInt(ec - exponent));
  if (sum === 0n) return (a * b) + c; // the sign of an exact zero follows IEEE 754, as in float64
  const negative = sum < 0n;
  let magnitude = negative ? -sum : sum;
  let scale = exponent;
  const length = magnitude.toString(2).length;
  if (length > 24) {
    const shift = BigInt(length - 24);
    const kept = magnitude >> shift;
    const rest = magnitude - (kept << shift);
    const half = 1n << (shift - 1n);
    magnitude = rest > half || (rest === half && (kept & 1n) === 1n) ? kept + 1n : kept;
    scale += length - 24;
  }
  const value = Number(magnitude) * 2 ** scale;
  return negative ? -value : value;
}

/**
 * A correctly rounded float32 fused multiply-add that works in float64: s = a b + c (a b exact), its rounding error
 * from Knuth's two-sum, and where s lies exactly halfway between two float32 values, the error decides the side.
 */
function fmaCorrectlyRounded(a: number, b: number, c: number): number {
  const product = a * b;
  const sum = product + c;
  const productPart = sum - c;
  const error = (product - productPart) + (c - (sum - productPart));
  const rounded = Math.fround(sum);
  if (error === 0 || rounded === sum) return rounded;
  const towardSum = sum - rounded;
  const beyond = rounded + 2 * towardSum;
  const halfway = Math.fround(beyond) === beyond;
  return halfway && Math.sign(error) === Math.sign(towardSum) ? beyond : rounded;
}

/** A float32 from a 32-bit pattern. */
function float32FromBits(bits: number): number {
  return new Float32Array(new Uint32Array([bits]).buffer)[0];
}

describe("float32 logarithm, sine and cosine of PyTorch's AVX2 randn", () => {
  test("float64 evaluation of a float32 fused multiply-add can double-round; the correctly rounded reference does not", () => {
    // a b = 2^-24 + 2^-70 exactly (8384513 x 8392705 = 2^46 + 1): 1 + a b lies just above the float32 midpoint
    // 1 + 2^-24, so the fused result is 1 + 2^-23; float64 rounds the sum to the midpoint, and float32 then to 1
    const a = 8384513 * 2 ** -35;
    const b = 8392705 * 2 ** -35;
    expect([Math.fround(a), Math.fround(b)]).toEqual([a, b]);
    expect(fmaExactRational(a, b, 1)).toBe(1 + 2 ** -23);
    expect(fmaCorrectlyRounded(a, b, 1)).toBe(1 + 2 ** -23);
    expect(fmaFloat32(a, b, 1)).toBe(1);
    expect(fmaCorrectlyRounded(-a, b, -1)).toBe(-1 - 2 ** -23);
    expect(fmaCorrectlyRounded(a, -b, 1 + 2 ** -22)).toBe(fmaExactRational(a, -b, 1 + 2 ** -22));
  });

  test("the correctly rounded reference agrees with exact integer arithmetic on 30000 float32 triples", () => {
    // a linear congruential generator picks bit patterns: exponents spread over 2^-40..2^10 so that the addend and
    // product differ in scale by up to 50 binades, and signs mixed
    let state = 12345;
    const next = () => (state = (Math.imul(state, 1103515245) + 12345) >>> 0);
    const pick = (minExponent: number, span: number) => {
      const exponent = 127 + minExponent + (next() % span);
      return float32FromBits(((next() & 1) << 31) | (exponent << 23) | (next() & 0x7fffff)) || 1;
    };
    let mismatches = 0;
    for (let k = 0; k < 30000; k++) {
      const a = pick(-20, 25);
      const b = pick(-20, 25);
      const c = pick(-40, 50);
      if (!Object.is(fmaCorrectlyRounded(a, b, c), fmaExactRational(a, b, c))) mismatches++;
    }
    expect(mismatches).toBe(0);
  }, 60_000);

  test(
    "logAvx2 with float64-evaluated fused steps equals it with correctly rounded ones for all 2^24 values of 1 - u",
    () => {
      // randn takes the logarithm of u1 = 1 - u = n / 2^24, n = 1..2^24: this covers every argument it can meet
      let differences = 0;
      for (let n = 1; n <= TWO_POW_24; n++) {
        const u1 = n / TWO_POW_24;
        if (!Object.is(logAvx2(u1), logAvx2(u1, fmaCorrectlyRounded))) differences++;
      }
      expect(differences).toBe(0);
    },
    120_000,
  );

  test(
    "sinCosAvx2 with float64-evaluated fused steps equals it with correctly rounded ones for all 2^24 angles 2 pi u",
    () => {
      // randn takes the sine and cosine of theta = float32(2 pi) u, u = k / 2^24, k = 0..2^24 - 1
      const twoPi = Math.fround(2 * Math.PI);
      const fast = new Float64Array(2);
      const exact = new Float64Array(2);
      let differences = 0;
      for (let k = 0; k < TWO_POW_24; k++) {
        const theta = Math.fround(twoPi * (k / TWO_POW_24));
        sinCosAvx2(theta, fast);
        sinCosAvx2(theta, exact, fmaCorrectlyRounded);
        if (!Object.is(fast[0], exact[0]) || !Object.is(fast[1], exact[1])) differences++;
      }
      expect(differences).toBe(0);
    },
    120_000,
  );

  test("logAvx2(1) is +0 and logAvx2(1/2) is ln(1/2) rounded to float32", () => {
    // t = 0 makes every term zero: y t^2 = +0, e q1 = 0 x q1 = -0, +0 + -0 = +0 (IEEE 754)
    expect(Object.is(logAvx2(1), 0)).toBe(true);
    expect(logAvx2(0.5)).toBe(Math.fround(Math.log(0.5)));
  });

  test("sinCosAvx2(0) is exactly (+0, 1)", () => {
    // j = 0, r = 0: the sine polynomial gives r = +0 and the cosine polynomial 1
    const out = sinCosAvx2(0, [Number.NaN, Number.NaN]);
    expect(Object.is(out[0], 0)).toBe(true);
    expect(out[1]).toBe(1);
  });
});
