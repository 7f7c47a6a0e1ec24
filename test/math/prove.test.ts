import { describe, expect, test } from "bun:test";
import { allIdentities } from "../../lib/math/equations.ts";
import { proveIdentity } from "../../lib/math/prove.ts";

const positive = ["a", "b", "c"];

describe("proveIdentity proves true identities", () => {
  test("a rational identity: (a^2 - b^2) / (a - b) = a + b", () => {
    expect(proveIdentity("(a^2 - b^2) / (a - b)", "a + b").proved).toBe(true);
  });

  test("sqrt splits along positive factors: sqrt(a b) / sqrt(a) = sqrt(b)", () => {
    expect(proveIdentity("sqrt(a * b) / sqrt(a)", "sqrt(b)", { positive }).proved).toBe(true);
  });

  test("sqrt of a square of a positive factor: sqrt(a^2 b) = a sqrt(b)", () => {
    expect(proveIdentity("sqrt(a^2 * b)", "a * sqrt(b)", { positive }).proved).toBe(true);
  });

  test("rationalizing a denominator: 1 / (sqrt(a) + sqrt(b)) = (sqrt(a) - sqrt(b)) / (a - b)", () => {
    expect(proveIdentity("1 / (sqrt(a) + sqrt(b))", "(sqrt(a) - sqrt(b)) / (a - b)", { positive }).proved).toBe(true);
  });

  test("a nested radical: sqrt(3 + 2 sqrt(2)) squared is 3 + 2 sqrt(2)", () => {
    expect(proveIdentity("sqrt(3 + 2 * sqrt(2))^2", "3 + 2 * sqrt(2)").proved).toBe(true);
  });

  test("half-integer powers are square roots: a^(3/2) = a sqrt(a), a^-0.5 = 1 / sqrt(a)", () => {
    expect(proveIdentity("a^(3/2)", "a * sqrt(a)", { positive }).proved).toBe(true);
    expect(proveIdentity("a^-0.5", "1 / sqrt(a)", { positive }).proved).toBe(true);
  });

  test("numeric constants are exact: sqrt(8) = 2 sqrt(2), 0.1 + 0.2 = 0.3, sqrt(1/4) = 1/2", () => {
    expect(proveIdentity("sqrt(8)", "2 * sqrt(2)").proved).toBe(true);
    expect(proveIdentity("0.1 + 0.2", "0.3").proved).toBe(true);
    expect(proveIdentity("sqrt(1/4)", "1/2").proved).toBe(true);
  });

  test("a compound positive factor: sqrt((1 - a) (1 - a b)) = sqrt(1 - a) sqrt(1 - a b)", () => {
    const proof = proveIdentity("sqrt((1 - a) * (1 - a * b))", "sqrt(1 - a) * sqrt(1 - a * b)", {
      positive: ["1 - a", "1 - a * b"],
    });
    expect(proof.proved).toBe(true);
  });
});

describe("proveIdentity does not prove false identities", () => {
  test("sqrt(a + b) = sqrt(a) + sqrt(b) is not proved", () => {
    expect(proveIdentity("sqrt(a + b)", "sqrt(a) + sqrt(b)", { positive }).proved).toBe(false);
  });

  test("a wrong sign is not proved: (a^2 - b^2) / (a - b) = a - b", () => {
    expect(proveIdentity("(a^2 - b^2) / (a - b)", "a - b").proved).toBe(false);
  });

  test("a missing sqrt is not proved: sqrt(a b) = a sqrt(b)", () => {
    expect(proveIdentity("sqrt(a * b)", "a * sqrt(b)", { positive }).proved).toBe(false);
  });

  test("sqrt(2) is not rational: sqrt(2) = 1.4142135623730951 is not proved", () => {
    expect(proveIdentity("sqrt(2)", "1.4142135623730951").proved).toBe(false);
  });

  test("a tiny constant difference is still a difference: a + 1e-12 = a is not proved", () => {
    expect(proveIdentity("a + 1e-12", "a").proved).toBe(false);
  });

  test("without the positivity assumption, sqrt(a^2) = a is not proved (it is |a|)", () => {
    expect(proveIdentity("sqrt(a^2)", "a").proved).toBe(false);
    expect(proveIdentity("sqrt(a^2)", "a", { positive: ["a"] }).proved).toBe(true);
  });
});

describe("proveIdentity reports its derivation and rejects bad input", () => {
  test("the steps name the claim, the assumptions, the square roots cleared and the verdict", () => {
    const { steps } = proveIdentity("sqrt(a * b) / sqrt(a)", "sqrt(b)", { positive });
    expect(steps[0]).toBe("claim: sqrt(a * b) / sqrt(a) = sqrt(b)");
    expect(steps[1]).toBe("assume positive: a, b, c");
    expect(steps).toContain("sqrt(a * b) = sqrt(a) * sqrt(b)");
    expect(steps.at(-1)).toBe("numerator = 0, so lhs = rhs: proved");
  });

  test("a failed proof shows the numerator that is left", () => {
    const { steps } = proveIdentity("a + b", "a - b");
    expect(steps.at(-1)).toBe("numerator = 2 * b ≠ 0: not proved");
  });

  test("unparsable input, unknown functions, symbolic exponents and negative radicands are errors", () => {
    expect(() => proveIdentity("a +", "b")).toThrow(/cannot parse the left side "a \+"/);
    expect(() => proveIdentity("a", "")).toThrow(/right side as a non-empty expression string/);
    expect(() => proveIdentity("exp(a)", "a")).toThrow(/only handle the function sqrt, got exp\(a\)/);
    expect(() => proveIdentity("a^b", "a")).toThrow(/constant exponent, got b/);
    expect(() => proveIdentity("sqrt(-4)", "2")).toThrow(/square root of a negative quantity: -4/);
    expect(() => proveIdentity("a / (b - b)", "a")).toThrow(/division by an expression that is identically 0/);
    expect(() => proveIdentity("a", "a", { positive: ["sqrt(a)"] })).toThrow(/only assume polynomials .* "sqrt\(a\)"/);
  });
});

describe("mathjs takes the final decision", () => {
  test("a proof carries mathjs's rationalized and simplified numerator, and that numerator is 0", () => {
    const { proved, steps } = proveIdentity("1 / (sqrt(a) + sqrt(b))", "(sqrt(a) - sqrt(b)) / (a - b)", { positive });
    expect(proved).toBe(true);
    expect(steps).toContain("root-free symbols: r1 = sqrt(a), r2 = sqrt(b)");
    expect(steps).toContain("lhs root-free: (r1 - r2) / (a - b)");
    expect(steps.some((s) => s.startsWith("mathjs rationalize: numerator = "))).toBe(true);
    expect(steps.at(-2)).toBe("mathjs simplify(numerator) = 0");
  });

  test("the key identity (7) at eta = 1 is decided by mathjs simplify returning 0", () => {
    const { identity } = allIdentities().find(({ identity }) => identity.id === "7-eta-one")!;
    const { proved, steps } = proveIdentity(identity.lhs, identity.rhs, { positive: identity.positive });
    expect(proved).toBe(true);
    expect(steps).toContain("mathjs simplify(numerator) = 0");
  });

  test("a failed proof reports mathjs's simplified numerator", () => {
    const { steps } = proveIdentity("sqrt(a * b)", "a * sqrt(b)", { positive });
    expect(steps.at(-2)).toMatch(/^mathjs simplify\(numerator\) = /);
    expect(steps.at(-2)).not.toBe("mathjs simplify(numerator) = 0");
  });

  test("decimal constants stay exact for mathjs: 1/10 + 2/10 = 3/10 is proved, 1/3 + 1/3 = 0.6667 is not", () => {
    const proof = proveIdentity("1/10 + 2/10", "3/10");
    expect(proof.proved).toBe(true);
    expect(proof.steps).toContain("root-free symbols: q10 = 10");
    expect(proveIdentity("1/3 + 1/3", "0.6667").proved).toBe(false);
  });

  test("when mathjs's floating-point constants say 0 but the exact numerator does not, it is not proved", () => {
    // 3 * 3002399751580331 = 2^53 + 1 exactly, which is not a float64: mathjs reads the product as 2^53, so its
    // numerator is 0, while the exact difference is a
    const { proved, steps } = proveIdentity("3 * 3002399751580331 * a", "9007199254740992 * a");
    expect(steps).toContain("mathjs simplify(numerator) = 0");
    expect(proved).toBe(false);
    expect(steps.at(-1)).toBe("mathjs's numerator is 0 but the exact numerator = a ≠ 0: not proved");
  });
});
