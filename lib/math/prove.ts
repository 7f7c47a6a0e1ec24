/**
 * Symbolic proofs of identities between real expressions with square roots, such as the DDIM paper's equations.
 *
 * | Idea                | Code name     | Meaning                                                          |
 * | ------------------- | ------------- | ---------------------------------------------------------------- |
 * | lhs - rhs           | `difference`  | the expression that must vanish                                  |
 * | N / D               | `num`, `den`  | the difference as one rational function                          |
 * | sqrt(A), A > 0      | radical       | a symbol r with the relation r^2 = A, for an assumed-positive A  |
 * | r^2 -> A            | `reduce`      | rewriting powers of radicals with their relations                |
 *
 * The method, step by step:
 * 1. Parse both sides with mathjs.
 * 2. Clear square roots: write each radicand as a constant times powers of the assumed-positive factors times a rest,
 *    so sqrt(c * A^e * rest) = A^floor(e/2) * sqrt(A)^(e mod 2) * sqrt(c * rest), valid because A > 0. Each remaining
 *    sqrt becomes a symbol r with r^2 equal to its radicand.
 * 3. Bring lhs - rhs to one fraction N / D with exact rational coefficients, and clear radicals from D by
 *    multiplying N and D by D's conjugate (D with r replaced by -r).
 * 4. Reduce N with every relation r^2 = A, so each radical appears at most to the first power, and expand: the exact
 *    verdict.
 * 5. Bring each side alone to its root-free normal form N_side / D_side (steps 2-4, then the factors numerator and
 *    denominator share among the positive factors and single variables divided out), radicals written as symbols
 *    r1, r2, ... The root-free difference is N_lhs - N_rhs when the denominators agree, else
 *    N_lhs D_rhs - N_rhs D_lhs.
 * 6. mathjs `rationalize(difference, {}, true)` brings it to one fraction.
 * 7. mathjs `simplify` reduces that numerator. The identity is proved only when mathjs returns the constant 0 and
 *    the exact numerator of step 4 is 0 too; if the two disagree it is not proved, and the last step says so.
 *    Constants with a denominator reach mathjs as n / q_d with a symbol q_d that is replaced by d only after
 *    `rationalize`, whose constant folding is floating point.
 *
 * The exact arithmetic uses BigInt fractions, so a proof never rests on floating-point rounding.
 *
 * @module
 */
import { parse, rationalize, simplify } from "mathjs";

/** The result of {@link proveIdentity}: whether the identity was proved, and the derivation. */
export interface Proof {
  /** True when mathjs simplified the root-free difference's numerator to 0 and the exact arithmetic agrees. */
  proved: boolean;
  /** The derivation, one readable line per step (mathjs syntax for the formulas). */
  steps: string[];
}

/** Options of {@link proveIdentity}. */
export interface ProveOptions {
  /** Expressions assumed to be > 0 (mathjs syntax), e.g. `["alpha", "1 - alphaBarPrev"]`. */
  positive?: readonly string[];
  /** Longest formula written into a step; longer ones are summarized by their term count (default 400). */
  maxStepLength?: number;
}

/**
 * Prove `lhs = rhs` symbolically, clearing square roots of the expressions assumed positive.
 *
 * Decides lhs - rhs = N / D = 0: with the square roots cleared (sqrt(A) = r, r^2 = A), mathjs's
 * simplify(rationalize(N_lhs D_rhs - N_rhs D_lhs).numerator) must be 0, and so must the exact reduction of N.
 *
 * @param lhs the left side, a mathjs expression string (`+ - * / ^`, `sqrt`, numbers, any variable names)
 * @param rhs the right side, in the same syntax
 * @param options `positive`: the expressions assumed > 0 that square roots may be split along
 * @returns `{ proved, steps }`; `proved: false` means no proof was found (for independent radicals: false)
 * @example
 * ```ts
 * import { proveIdentity } from "./prove.ts";
 * const proof = proveIdentity("sqrt(a * b) / sqrt(a)", "sqrt(b)", { positive: ["a", "b"] });
 * if (!proof.proved) throw new Error("sqrt(ab) / sqrt(a) = sqrt(b) for positive a, b");
 * if (proveIdentity("sqrt(a + b)", "sqrt(a) + sqrt(b)", { positive: ["a", "b"] }).proved) {
 *   throw new Error("sqrt(a + b) = sqrt(a) + sqrt(b) is false (a = b = 1)");
 * }
 * ```
 */
export function proveIdentity(lhs: string, rhs: string, options: ProveOptions = {}): Proof {
  if (typeof lhs !== "string" || lhs.trim() === "") {
    throw new TypeError(`proveIdentity needs the left side as a non-empty expression string, got ${String(lhs)}`);
  }
  if (typeof rhs !== "string" || rhs.trim() === "") {
    throw new TypeError(`proveIdentity needs the right side as a non-empty expression string, got ${String(rhs)}`);
  }
  const positive = options.positive ?? [];
  const maxLength = options.maxStepLength ?? 400;
  const algebra = new RadicalAlgebra();
  const steps: string[] = [];
  const show = (p: Poly) => summarize(polyToString(p), p.size, maxLength);

  steps.push(`claim: ${parseOrThrow(lhs, "left side").toString()} = ${parseOrThrow(rhs, "right side").toString()}`);
  for (const text of positive) {
    const atom = fromNode(parseOrThrow(text, "positive assumption"), algebra);
    if (atom.den.size !== 1 || !isConstant(atom.den) || polyHasAny(atom.num, algebra.radicalNames())) {
      throw new RangeError(`proveIdentity can only assume polynomials without square roots positive, got "${text}"`);
    }
    algebra.addPositive(scale(atom.num, qInv(constantOf(atom.den))), text);
  }
  if (positive.length > 0) steps.push(`assume positive: ${positive.join(", ")}`);

  // 1-2. parse, clearing square roots as they are met
  const left = fromNode(parseOrThrow(lhs, "left side"), algebra);
  const right = fromNode(parseOrThrow(rhs, "right side"), algebra);
  for (const line of algebra.log) steps.push(line);

  // 3. one fraction, radical-free denominator
  let difference = algebra.rationalizeDenominator(ratSub(left, right));
  if (difference.den.size === 0) {
    throw new RangeError(`proveIdentity found a zero denominator in (${lhs}) - (${rhs})`);
  }
  steps.push(`difference as one fraction: (${show(difference.num)}) / (${show(difference.den)})`);

  // 4. reduce the numerator with r^2 = A
  difference = algebra.reduce(difference);
  if (algebra.radicals.length > 0) {
    steps.push(`numerator reduced with ${algebra.radicals.map((r) => `${r.name}^2 = ${r.square}`).join(", ")}`);
  }
  const exactZero = difference.num.size === 0;
  steps.push(`exact arithmetic: numerator = ${exactZero ? "0" : show(difference.num)}`);

  // 5-7. the decisive step is mathjs's: the root-free difference, rationalize, simplify
  const decision = decideWithMathjs(lhs, rhs, algebra, maxLength);
  steps.push(...decision.steps);
  let proved = false;
  if (decision.numerator === undefined) {
    steps.push(`mathjs could not bring the difference to one fraction: not proved`);
  } else if (decision.zero && exactZero) {
    proved = true;
    steps.push("numerator = 0, so lhs = rhs: proved");
  } else if (decision.zero !== exactZero) {
    steps.push(
      decision.zero
        ? `mathjs's numerator is 0 but the exact numerator = ${show(difference.num)} ≠ 0: not proved`
        : `the exact numerator is 0 but mathjs's numerator = ${
          abbreviate(decision.numerator, maxLength)
        } ≠ 0: not proved`,
    );
  } else {
    steps.push(`numerator = ${abbreviate(decision.numerator, maxLength)} ≠ 0: not proved`);
  }
  return { proved, steps };
}

/** What mathjs decided: its simplified numerator (undefined if mathjs failed) and whether that is the constant 0. */
interface MathjsDecision {
  steps: string[];
  // deno-lint-ignore no-explicit-any
  numerator?: any;
  zero: boolean;
}

/**
 * Steps 5-7 in mathjs. Each side in its root-free normal form N / D (step 5) gives the root-free difference
 * N_lhs D_rhs - N_rhs D_lhs (or N_lhs - N_rhs when the denominators agree); mathjs `rationalize`s it and `simplify`s
 * the numerator, and the sides are equal exactly when that is the constant 0 (the denominators are nonzero wherever
 * both sides are defined).
 */
function decideWithMathjs(lhs: string, rhs: string, algebra: RadicalAlgebra, maxLength: number): MathjsDecision {
  const steps: string[] = [];
  const left = normalForm(fromNode(parse(lhs), algebra), algebra);
  const right = normalForm(fromNode(parse(rhs), algebra), algebra);

  // fresh names for the radicals (r1, r2, ...) and for constant denominators (q10 stands for 10, which keeps
  // mathjs's floating-point constant folding away from fractions such as 1/10)
  const used = new Set<string>();
  for (const f of [left, right, ...algebra.radicals.map((r) => r.value)]) {
    for (const t of [...f.num.values(), ...f.den.values()]) for (const [v] of t.m) used.add(v);
  }
  const fresh = (base: string) => {
    let name = base;
    for (let k = 0; used.has(name); k++) name = `${base}_${k}`;
    used.add(name);
    return name;
  };
  const symbols = new Map(algebra.radicals.map((r, i) => [r.name, fresh(`r${i + 1}`)]));
  const denominators = new Map<bigint, string>();
  const constant = (c: Rational) => {
    if (c.d === 1n) return `${c.n}`;
    if (!denominators.has(c.d)) denominators.set(c.d, fresh(`q${c.d}`));
    return `${c.n} / ${denominators.get(c.d)}`;
  };
  const text = (p: Poly) => `(${polyToMathjs(p, symbols, constant)})`;

  // 5. the root-free difference, radicals as symbols
  const sameDenominator = polyToString(left.den) === polyToString(right.den);
  const rootFree = parse(
    sameDenominator
      ? `${text(left.num)} - ${text(right.num)}`
      : `${text(left.num)} * ${text(right.den)} - ${text(right.num)} * ${text(left.den)}`,
  );
  const legend = [
    ...algebra.radicals.map((r) => `${symbols.get(r.name)} = ${r.name}`),
    ...[...denominators].map(([d, name]) => `${name} = ${d}`),
  ];
  if (legend.length > 0) steps.push(`root-free symbols: ${legend.join(", ")}`);
  steps.push(`lhs root-free: ${summarize(`${text(left.num)} / ${text(left.den)}`, left.num.size, maxLength)}`);
  steps.push(`rhs root-free: ${summarize(`${text(right.num)} / ${text(right.den)}`, right.num.size, maxLength)}`);
  steps.push(
    `root-free difference${
      sameDenominator ? " of the numerators over the common denominator" : ", cross-multiplied"
    }: ` +
      abbreviate(rootFree, maxLength),
  );

  // 6. one rational function (mathjs rationalize)
  // deno-lint-ignore no-explicit-any
  let fraction: { numerator: any; denominator?: any };
  try {
    // deno-lint-ignore no-explicit-any
    fraction = rationalize(rootFree, {}, true) as any;
  } catch (error) {
    steps.push(`mathjs rationalize failed: ${(error as Error).message}`);
    return { steps, zero: false };
  }
  steps.push(
    `mathjs rationalize: numerator = ${abbreviate(fraction.numerator, maxLength)}, ` +
      `denominator = ${fraction.denominator ? abbreviate(fraction.denominator, maxLength) : "1"}`,
  );

  // 7. the numerator, with the constant denominators put back, simplified (mathjs simplify)
  const values = new Map([...denominators].map(([d, name]) => [name, `${d}`]));
  // deno-lint-ignore no-explicit-any
  const numerator = fraction.numerator.transform((
    n: any,
  ) => (n.type === "SymbolNode" && values.has(n.name) ? parse(values.get(n.name)!) : n));
  const simplified = simplify(numerator);
  const zero = simplified.type === "ConstantNode" && Number((simplified as unknown as { value: unknown }).value) === 0;
  steps.push(`mathjs simplify(numerator) = ${abbreviate(simplified, maxLength)}`);
  return { steps, numerator: simplified, zero };
}

/** One side's root-free normal form: reduced with r^2 = A, radicals cleared from the denominator, divided out. */
function normalForm(f: RatFunc, algebra: RadicalAlgebra): RatFunc {
  let { num, den } = algebra.reduce(algebra.rationalizeDenominator(f));
  const exact = divideExact(num, den);
  if (exact) return { num: exact, den: polyConst(q(1n)) };
  // cancel the factors numerator and denominator share among the positive factors and the single variables
  const variables = new Set<string>();
  for (const t of den.values()) for (const [v] of t.m) variables.add(v);
  for (const factor of [...algebra.positiveFactors(), ...[...variables].map(polyVar)]) {
    for (;;) {
      const n = divideExact(num, factor), d = divideExact(den, factor);
      if (!n || !d) break;
      [num, den] = [n, d];
    }
  }
  const lead = qInv(leadingTerm(den).c);
  [num, den] = [scale(num, lead), scale(den, lead)];
  return { num, den };
}

/** A mathjs node printed, or summarized by its number of top-level terms when longer than maxLength. */
// deno-lint-ignore no-explicit-any
function abbreviate(node: any, maxLength: number): string {
  const text = node.toString();
  if (text.length <= maxLength) return text;
  let terms = 1;
  // deno-lint-ignore no-explicit-any
  const count = (n: any) => {
    if (n.type === "OperatorNode" && (n.op === "+" || n.op === "-") && n.args.length === 2) {
      terms++;
      count(n.args[0]);
    }
  };
  count(node);
  return `<expression of ${terms} terms, ${text.length} characters>`;
}

/** A polynomial as a mathjs expression string, radicals by their symbols and constants through `constant`. */
function polyToMathjs(p: Poly, symbols: Map<string, string>, constant: (c: Rational) => string): string {
  if (p.size === 0) return "0";
  let out = "";
  for (const { m, c } of [...p.values()].sort((s, t) => -compareMonomials(s.m, t.m))) {
    const magnitude = c.n < 0n ? qNeg(c) : c;
    const factors = m.map(([v, e]) => (e === 1 ? symbols.get(v) ?? v : `${symbols.get(v) ?? v}^${e}`));
    const number = magnitude.d === 1n ? constant(magnitude) : `(${constant(magnitude)})`;
    const body = factors.length === 0
      ? number
      : [...(magnitude.n === 1n && magnitude.d === 1n ? [] : [number]), ...factors].join(" * ");
    out += out === "" ? (c.n < 0n ? `-${body}` : body) : c.n < 0n ? ` - ${body}` : ` + ${body}`;
  }
  return out;
}

function parseOrThrow(text: string, what: string) {
  try {
    return parse(text);
  } catch (error) {
    throw new SyntaxError(`proveIdentity cannot parse the ${what} "${text}": ${(error as Error).message}`);
  }
}

function summarize(text: string, terms: number, maxLength: number): string {
  return text.length <= maxLength ? text : `<polynomial of ${terms} terms>`;
}

// ---------------------------------------------------------------------------------------------------------------
// Exact rationals
// ---------------------------------------------------------------------------------------------------------------

interface Rational {
  n: bigint;
  d: bigint;
}

function gcd(a: bigint, b: bigint): bigint {
  a = a < 0n ? -a : a;
  b = b < 0n ? -b : b;
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

function q(n: bigint, d = 1n): Rational {
  if (d === 0n) throw new RangeError("proveIdentity met a division by the number 0");
  if (d < 0n) [n, d] = [-n, -d];
  const g = gcd(n, d) || 1n;
  return { n: n / g, d: d / g };
}

const qAdd = (a: Rational, b: Rational) => q(a.n * b.d + b.n * a.d, a.d * b.d);
const qMul = (a: Rational, b: Rational) => q(a.n * b.n, a.d * b.d);
const qInv = (a: Rational) => q(a.d, a.n);
const qNeg = (a: Rational) => ({ n: -a.n, d: a.d });

/** Exact rational from a decimal literal such as "0.02" or "1e-4". */
function qFromLiteral(text: string): Rational {
  const match = /^(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(text.trim());
  if (!match) throw new RangeError(`proveIdentity can only use real number literals, got ${text}`);
  const [, whole, fraction = "", exponent = "0"] = match;
  let value = q(BigInt((whole || "0") + fraction), 10n ** BigInt(fraction.length));
  const power = Number(exponent);
  value = power >= 0 ? qMul(value, q(10n ** BigInt(power))) : qMul(value, q(1n, 10n ** BigInt(-power)));
  return value;
}

/** n = outside^2 * inside with the squares of primes below 1000 taken out of inside (n >= 0). */
function splitSquares(n: bigint): { outside: bigint; inside: bigint } {
  let outside = 1n, inside = n;
  for (let p = 2n; p < 1000n && p * p <= inside; p++) {
    while (inside % (p * p) === 0n) {
      inside /= p * p;
      outside *= p;
    }
  }
  const root = qSqrt(q(inside));
  return root ? { outside: outside * root.n, inside: 1n } : { outside, inside };
}

function qSqrt(a: Rational): Rational | undefined {
  const root = (x: bigint) => {
    if (x < 2n) return x;
    let r = BigInt(Math.floor(Math.sqrt(Number(x))));
    while (r * r > x) r--;
    while ((r + 1n) * (r + 1n) <= x) r++;
    return r * r === x ? r : undefined;
  };
  if (a.n < 0n) return undefined;
  const n = root(a.n), d = root(a.d);
  return n !== undefined && d !== undefined ? q(n, d) : undefined;
}

const qToString = (a: Rational) => (a.d === 1n ? `${a.n}` : `${a.n} / ${a.d}`);

// ---------------------------------------------------------------------------------------------------------------
// Multivariate polynomials with rational coefficients; variables are symbols or radical names
// ---------------------------------------------------------------------------------------------------------------

/** A monomial: variable name -> positive exponent, sorted by name. */
type Monomial = readonly (readonly [string, number])[];
interface Term {
  m: Monomial;
  c: Rational;
}
/** A polynomial: monomial key -> term; an empty map is 0. */
type Poly = Map<string, Term>;

const keyOf = (m: Monomial) => m.map(([v, e]) => `${v}\u0000${e}`).join("\u0001");

function polyConst(c: Rational): Poly {
  return c.n === 0n ? new Map() : new Map([["", { m: [], c }]]);
}

function polyVar(name: string): Poly {
  const m: Monomial = [[name, 1]];
  return new Map([[keyOf(m), { m, c: q(1n) }]]);
}

function addTerm(p: Poly, m: Monomial, c: Rational): void {
  const key = keyOf(m);
  const old = p.get(key);
  const sum = old ? qAdd(old.c, c) : c;
  if (sum.n === 0n) p.delete(key);
  else p.set(key, { m, c: sum });
}

function add(a: Poly, b: Poly): Poly {
  const out: Poly = new Map(a);
  for (const t of b.values()) addTerm(out, t.m, t.c);
  return out;
}

function scale(a: Poly, c: Rational): Poly {
  const out: Poly = new Map();
  for (const t of a.values()) addTerm(out, t.m, qMul(t.c, c));
  return out;
}

function monoMul(a: Monomial, b: Monomial): Monomial {
  const exps = new Map(a);
  for (const [v, e] of b) exps.set(v, (exps.get(v) ?? 0) + e);
  return [...exps].filter(([, e]) => e !== 0).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
}

function mul(a: Poly, b: Poly): Poly {
  const out: Poly = new Map();
  for (const s of a.values()) for (const t of b.values()) addTerm(out, monoMul(s.m, t.m), qMul(s.c, t.c));
  return out;
}

function power(a: Poly, k: number): Poly {
  let out = polyConst(q(1n));
  for (let i = 0; i < k; i++) out = mul(out, a);
  return out;
}

const isConstant = (p: Poly) => p.size === 0 || (p.size === 1 && p.has(""));
const constantOf = (p: Poly) => p.get("")?.c ?? q(0n);
const exponentOf = (m: Monomial, v: string) => m.find(([name]) => name === v)?.[1] ?? 0;

function polyHasAny(p: Poly, names: ReadonlySet<string>): boolean {
  for (const t of p.values()) for (const [v] of t.m) if (names.has(v)) return true;
  return false;
}

/** Lexicographic order on monomials (by sorted variable name, then exponent). */
function compareMonomials(a: Monomial, b: Monomial): number {
  const names = [...new Set([...a.map(([v]) => v), ...b.map(([v]) => v)])].sort();
  for (const v of names) {
    const d = exponentOf(a, v) - exponentOf(b, v);
    if (d !== 0) return d;
  }
  return 0;
}

function leadingTerm(p: Poly): Term {
  let best: Term | undefined;
  for (const t of p.values()) if (!best || compareMonomials(t.m, best.m) > 0) best = t;
  return best!;
}

/** a / b when b divides a exactly, else undefined (division by one polynomial: remainder 0 iff divisible). */
function divideExact(a: Poly, b: Poly): Poly | undefined {
  if (b.size === 0) return undefined;
  const lead = leadingTerm(b);
  let rest: Poly = new Map(a);
  const quotient: Poly = new Map();
  while (rest.size > 0) {
    const t = leadingTerm(rest);
    const m: [string, number][] = [];
    for (const [v, e] of t.m) m.push([v, e - exponentOf(lead.m, v)]);
    for (const [v] of lead.m) if (exponentOf(t.m, v) === 0) return undefined;
    if (m.some(([, e]) => e < 0)) return undefined;
    const factor: Monomial = m.filter(([, e]) => e !== 0);
    const c = qMul(t.c, qInv(lead.c));
    addTerm(quotient, factor, c);
    rest = add(rest, scale(mul(b, new Map([[keyOf(factor), { m: factor, c }]])), q(-1n)));
  }
  return quotient;
}

/** Replace radical r by -r (the conjugate). */
function conjugate(p: Poly, r: string): Poly {
  const out: Poly = new Map();
  for (const t of p.values()) addTerm(out, t.m, exponentOf(t.m, r) % 2 === 1 ? qNeg(t.c) : t.c);
  return out;
}

function polyToString(p: Poly): string {
  if (p.size === 0) return "0";
  const degree = (m: Monomial) => m.reduce((sum, [, e]) => sum + e, 0);
  const terms = [...p.values()].sort((s, t) => degree(s.m) - degree(t.m) || -compareMonomials(s.m, t.m));
  let out = "";
  for (const { m, c } of terms) {
    const negative = c.n < 0n;
    const magnitude = negative ? qNeg(c) : c;
    const factors = m.map(([v, e]) => {
      const base = /^[A-Za-z_][A-Za-z0-9_]*$/.test(v) ? v : `(${v})`.replace(/^\((sqrt\(.*\))\)$/, "$1");
      return e === 1 ? base : `${base}^${e}`;
    });
    const isOne = magnitude.n === 1n && magnitude.d === 1n;
    const body = factors.length === 0
      ? qToString(magnitude)
      : `${isOne ? "" : magnitude.d === 1n ? `${magnitude.n} * ` : `(${qToString(magnitude)}) * `}${
        factors.join(" * ")
      }`;
    out += out === "" ? (negative ? `-${body}` : body) : negative ? ` - ${body}` : ` + ${body}`;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Rational functions and radicals
// ---------------------------------------------------------------------------------------------------------------

interface RatFunc {
  num: Poly;
  den: Poly;
}

const ratConst = (c: Rational): RatFunc => ({ num: polyConst(c), den: polyConst(q(1n)) });
const ratAdd = (a: RatFunc, b: RatFunc): RatFunc => ({
  num: add(mul(a.num, b.den), mul(b.num, a.den)),
  den: mul(a.den, b.den),
});
const ratNeg = (a: RatFunc): RatFunc => ({ num: scale(a.num, q(-1n)), den: a.den });
const ratSub = (a: RatFunc, b: RatFunc) => ratAdd(a, ratNeg(b));
const ratMul = (a: RatFunc, b: RatFunc): RatFunc => ({ num: mul(a.num, b.num), den: mul(a.den, b.den) });
function ratDiv(a: RatFunc, b: RatFunc): RatFunc {
  if (b.num.size === 0) throw new RangeError("proveIdentity met a division by an expression that is identically 0");
  return { num: mul(a.num, b.den), den: mul(a.den, b.num) };
}
function ratPow(a: RatFunc, k: number): RatFunc {
  const base = k >= 0 ? a : ratDiv(ratConst(q(1n)), a);
  return { num: power(base.num, Math.abs(k)), den: power(base.den, Math.abs(k)) };
}

interface Radical {
  /** The radical's symbol, written as the square root it stands for. */
  name: string;
  /** Its square, a rational function (may hold earlier radicals). */
  value: RatFunc;
  /** The square, printed. */
  square: string;
}

/** The radicals met in one proof and the positive factors square roots may be split along. */
class RadicalAlgebra {
  readonly radicals: Radical[] = [];
  readonly log: string[] = [];
  private readonly positives: { poly: Poly; text: string }[] = [];
  private readonly names = new Map<string, string>();

  radicalNames(): Set<string> {
    return new Set(this.radicals.map((r) => r.name));
  }

  positiveFactors(): Poly[] {
    return this.positives.map((p) => p.poly);
  }

  addPositive(poly: Poly, text: string): void {
    if (isConstant(poly)) return;
    this.positives.push({ poly, text: parse(text).toString() });
  }

  private radical(radicand: RatFunc, printed: string): RatFunc {
    const key = `(${polyToString(radicand.num)}) / (${polyToString(radicand.den)})`;
    if (!this.names.has(key)) this.names.set(key, `sqrt(${printed})`);
    const name = this.names.get(key)!;
    if (!this.radicals.some((r) => r.name === name)) {
      this.radicals.push({ name, value: radicand, square: printed });
    }
    return { num: polyVar(name), den: polyConst(q(1n)) };
  }

  /** sqrt of a rational function, split along the positive factors (step 2). */
  sqrt(radicand: RatFunc, source: string): RatFunc {
    const e = this.reduce(this.rationalizeDenominator(radicand));
    if (e.num.size === 0) return ratConst(q(0n));
    let num = e.num, den = e.den;
    let result = ratConst(q(1n));
    const shown: string[] = [], shownBelow: string[] = [];
    if (!polyHasAny(num, this.radicalNames()) && !polyHasAny(den, this.radicalNames())) {
      for (const { poly, text } of this.positives) {
        let exponent = 0;
        for (let quotient = divideExact(num, poly); quotient; quotient = divideExact(num, poly)) {
          num = quotient;
          exponent++;
        }
        for (let quotient = divideExact(den, poly); quotient; quotient = divideExact(den, poly)) {
          den = quotient;
          exponent--;
        }
        if (exponent === 0) continue;
        const even = Math.floor(exponent / 2);
        result = ratMul(result, ratPow({ num: poly, den: polyConst(q(1n)) }, even));
        const factor = /^[A-Za-z_][A-Za-z0-9_]*$/.test(text) ? text : `(${text})`;
        if (even > 0) shown.push(even === 1 ? factor : `${factor}^${even}`);
        if (even < 0) shownBelow.push(even === -1 ? factor : `${factor}^${-even}`);
        if (exponent - 2 * even === 1) {
          const root = this.radical({ num: poly, den: polyConst(q(1n)) }, text);
          result = ratMul(result, root);
          shown.push(polyToString(root.num));
        }
      }
    }
    // what is left: a constant times a rest that is not split further
    if (isConstant(num) && isConstant(den)) {
      const c = qMul(constantOf(num), qInv(constantOf(den)));
      if (c.n < 0n) throw new RangeError(`proveIdentity met the square root of a negative quantity: ${source}`);
      // sqrt(n / d) = sqrt(n d) / d = (outside / d) sqrt(inside), with the square factors of n d taken out
      const { outside, inside } = splitSquares(c.n * c.d);
      const rational = q(outside, c.d);
      const factor = inside === 1n
        ? ratConst(rational)
        : ratMul(ratConst(rational), this.radical(ratConst(q(inside)), `${inside}`));
      result = ratMul(result, factor);
      if (inside !== 1n || rational.n !== 1n || rational.d !== 1n) shown.unshift(ratToString(factor));
    } else {
      const exact = divideExact(num, den);
      if (exact) [num, den] = [exact, polyConst(q(1n))];
      const lead = leadingTerm(den).c; // divide both by den's leading coefficient, so the printed rest is canonical
      num = scale(num, qInv(lead));
      den = scale(den, qInv(lead));
      const printed = isConstant(den) && constantOf(den).n === 1n && constantOf(den).d === 1n
        ? polyToString(num)
        : `(${polyToString(num)}) / (${polyToString(den)})`;
      const root = this.radical({ num, den }, printed);
      result = ratMul(result, root);
      shown.push(polyToString(root.num));
    }
    const above = shown.length === 0 ? "1" : shown.join(" * ");
    const text = shownBelow.length === 0
      ? above
      : `${above} / ${shownBelow.length > 1 ? `(${shownBelow.join(" * ")})` : shownBelow[0]}`;
    const line = `sqrt(${source}) = ${text}`;
    if (text !== `sqrt(${source})` && !this.log.includes(line)) this.log.push(line);
    return result;
  }

  /** Rewrite r^k (k >= 2) with r^2 = A for every radical, newest first, in numerator and denominator (step 4). */
  reduce(f: RatFunc): RatFunc {
    let { num, den } = f;
    for (let i = this.radicals.length - 1; i >= 0; i--) {
      const r = this.radicals[i];
      const n = reducePoly(num, r), d = reducePoly(den, r);
      // num / den = (n.poly / A.den^n.k) / (d.poly / A.den^d.k)
      num = mul(n.poly, power(r.value.den, d.k));
      den = mul(d.poly, power(r.value.den, n.k));
    }
    return { num, den };
  }

  /** Multiply numerator and denominator by the denominator's conjugates until it holds no radical (step 3). */
  rationalizeDenominator(f: RatFunc): RatFunc {
    let current = this.reduce(f);
    for (let i = this.radicals.length - 1; i >= 0; i--) {
      const r = this.radicals[i].name;
      if (!polyHasAny(current.den, new Set([r]))) continue;
      const conj = conjugate(current.den, r);
      current = this.reduce({ num: mul(current.num, conj), den: mul(current.den, conj) });
    }
    return current;
  }
}

/** p with r^k rewritten as r^(k mod 2) * A^(k div 2), scaled by A.den^k so it stays a polynomial. */
function reducePoly(p: Poly, r: Radical): { poly: Poly; k: number } {
  let k = 0;
  for (const t of p.values()) k = Math.max(k, Math.floor(exponentOf(t.m, r.name) / 2));
  if (k === 0) return { poly: p, k: 0 };
  let out: Poly = new Map();
  for (const t of p.values()) {
    const e = exponentOf(t.m, r.name);
    const half = Math.floor(e / 2);
    const rest: Monomial = t.m.map(([v, x]) => [v, v === r.name ? x - 2 * half : x] as const).filter(([, x]) => x);
    const factor = mul(power(r.value.num, half), power(r.value.den, k - half));
    out = add(out, mul(new Map([[keyOf(rest), { m: rest, c: t.c }]]), factor));
  }
  return { poly: out, k };
}

function ratToString(f: RatFunc): string {
  const num = polyToString(f.num);
  if (isConstant(f.den) && constantOf(f.den).n === 1n && constantOf(f.den).d === 1n) return num;
  const wrap = (s: string, p: Poly) => (p.size > 1 ? `(${s})` : s);
  return `${wrap(num, f.num)} / ${wrap(polyToString(f.den), f.den)}`;
}

/** Convert a mathjs expression tree to a rational function, clearing square roots as they are met. */
// deno-lint-ignore no-explicit-any
function fromNode(node: any, algebra: RadicalAlgebra): RatFunc {
  switch (node.type) {
    case "ParenthesisNode":
      return fromNode(node.content, algebra);
    case "ConstantNode": {
      if (typeof node.value !== "number" && typeof node.value !== "string") {
        throw new RangeError(`proveIdentity can only use real number constants, got ${String(node.value)}`);
      }
      return ratConst(qFromLiteral(String(node.value)));
    }
    case "SymbolNode":
      return { num: polyVar(node.name), den: polyConst(q(1n)) };
    case "OperatorNode": {
      const args = node.args as unknown[];
      if (node.fn === "unaryMinus") return ratNeg(fromNode(args[0], algebra));
      if (node.fn === "unaryPlus") return fromNode(args[0], algebra);
      if (node.op === "^") return powerNode(args[0], args[1], algebra);
      const [a, b] = args.map((arg) => fromNode(arg, algebra));
      if (node.op === "+") {
        return args.slice(2).reduce((s: RatFunc, x) => ratAdd(s, fromNode(x, algebra)), ratAdd(a, b));
      }
      if (node.op === "*") {
        return args.slice(2).reduce((s: RatFunc, x) => ratMul(s, fromNode(x, algebra)), ratMul(a, b));
      }
      if (node.op === "-") return ratSub(a, b);
      if (node.op === "/") return ratDiv(a, b);
      throw new RangeError(`proveIdentity cannot handle the operator "${node.op}" in ${node.toString()}`);
    }
    case "FunctionNode": {
      if (node.fn?.name === "sqrt" && node.args.length === 1) {
        return algebra.sqrt(fromNode(node.args[0], algebra), node.args[0].toString());
      }
      throw new RangeError(`proveIdentity can only handle the function sqrt, got ${node.toString()}`);
    }
    default:
      throw new RangeError(`proveIdentity cannot handle the expression ${node.toString()}`);
  }
}

/** base ^ exponent for an exponent that is an integer or a half-integer constant. */
// deno-lint-ignore no-explicit-any
function powerNode(baseNode: any, exponentNode: any, algebra: RadicalAlgebra): RatFunc {
  const exponent = fromNode(exponentNode, algebra);
  if (!isConstant(exponent.num) || !isConstant(exponent.den)) {
    throw new RangeError(`proveIdentity needs a constant exponent, got ${exponentNode.toString()}`);
  }
  const value = qMul(constantOf(exponent.num), qInv(constantOf(exponent.den)));
  const base = fromNode(baseNode, algebra);
  if (value.d === 1n) return ratPow(base, Number(value.n));
  if (value.d === 2n) {
    const root = algebra.sqrt(base, baseNode.toString());
    return ratPow(root, Number(value.n));
  }
  throw new RangeError(
    `proveIdentity can only raise to integer or half-integer powers, got ${exponentNode.toString()}`,
  );
}
