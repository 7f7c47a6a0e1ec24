import { describe, expect, test } from "bun:test";
import { evaluate } from "mathjs";
import { allIdentities, BDIA_POSITIVE, EQUATIONS, POSITIVE_SCHEDULE, substitute } from "../../lib/math/equations.ts";
import { proveIdentity } from "../../lib/math/prove.ts";

/** A point inside the domain: 0 < alpha, alphaBarPrev, alphaNext < 1, sigma^2 < 1 - alphaBarPrev, 0 < p, gamma < 1. */
function point(seed: number): Record<string, number> {
  const u = (k: number) => (Math.sin(seed * 12.9898 + k * 78.233) * 43758.5453) % 1;
  const r = (k: number) => Math.abs(u(k));
  const alphaBarPrev = 0.05 + 0.9 * r(1);
  return {
    alpha: 0.05 + 0.9 * r(2),
    alphaBarPrev,
    sigma: 0.9 * r(3) * Math.sqrt(1 - alphaBarPrev),
    eta: r(4),
    x0: 2 * u(5),
    x0Clipped: u(6),
    xt: 3 * u(7),
    xPrev: 3 * u(8),
    eps: 2 * u(9),
    z: 2 * u(10),
    yt: 3 * u(11),
    epsX: 2 * u(12),
    epsY: 2 * u(13),
    xInter: 3 * u(14),
    yInter: 3 * u(15),
    xNew: 3 * u(16),
    yNew: 3 * u(17),
    p: 0.05 + 0.9 * r(18),
    alphaNext: 0.05 + 0.9 * r(19),
    gamma: 0.05 + 0.95 * r(20),
    zi: 3 * u(21),
    zNext: 3 * u(22),
    zPrev: 3 * u(23),
  };
}

const evaluateAt = (expression: string, scope: Record<string, number>) => evaluate(expression, { ...scope }) as number;

describe("the registry", () => {
  test("numbers the equations 1 to 13, each with a title, the paper's number and at least one identity", () => {
    expect(EQUATIONS.map((e) => e.number)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
    for (const equation of EQUATIONS) {
      expect(equation.title.length).toBeGreaterThan(5);
      expect(equation.paperEquation.length).toBeGreaterThan(0);
      expect(equation.identities.length).toBeGreaterThan(0);
    }
    const ids = allIdentities().map(({ identity }) => identity.id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  test("substitute replaces whole variable names only", () => {
    expect(substitute("alpha * alphaBarPrev + alpha", { alpha: "a + 1" })).toBe("(a + 1) * alphaBarPrev + (a + 1)");
    expect(substitute("eta * x", { eta: "1" })).toBe("1 * x");
  });
});

describe("every registered identity is proved", () => {
  for (const { equation, identity } of allIdentities()) {
    test(`(${equation}) ${identity.id}: ${identity.statement}`, () => {
      const proof = proveIdentity(identity.lhs, identity.rhs, { positive: identity.positive });
      expect(proof.steps.at(-1)).toBe("numerator = 0, so lhs = rhs: proved");
      expect(proof.proved).toBe(true);
      // an independent floating-point check of the same statement at a few points of the domain
      for (const seed of [1, 2, 3]) {
        const scope = point(seed);
        expect(evaluateAt(identity.lhs, scope)).toBeCloseTo(evaluateAt(identity.rhs, scope), 10);
      }
    });
  }
});

const find = (id: string) => allIdentities().find(({ identity }) => identity.id === id)!.identity;
const sigmaOne = substitute(EQUATIONS[4].expressions.sigma, { eta: "1" });

/** Plausible but false variants of the registry's identities: each must come back not proved. */
const falseVariants: { name: string; lhs: string; rhs: string; positive?: readonly string[] }[] = [
  {
    name: "(7) with alpha_t where alphaBar_t belongs in the denominator",
    lhs: find("7-eta-one").lhs,
    rhs: "(1 - alphaBarPrev) * sqrt(alpha) / sqrt(1 - alpha)",
  },
  {
    name: "(7) with the sqrt on alpha_t missing",
    lhs: find("7-eta-one").lhs,
    rhs: "(1 - alphaBarPrev) * alpha / sqrt(1 - alpha * alphaBarPrev)",
  },
  {
    name: "(7) with sqrt(1 - alphaBar_{t-1}) in place of (1 - alphaBar_{t-1})",
    lhs: find("7-eta-one").lhs,
    rhs: "sqrt(1 - alphaBarPrev) * sqrt(alpha) / sqrt(1 - alpha * alphaBarPrev)",
  },
  {
    name: "(8) DDIM at eta = 1 against DDPM with a wrong sign on the noise term",
    lhs: find("8-update").lhs,
    rhs: find("8-update").rhs.replace("(xt - (1 - alpha)", "(xt + (1 - alpha)"),
  },
  {
    name: "(8) DDPM's update with beta_t / (1 - alphaBar_t) instead of beta_t / sqrt(1 - alphaBar_t)",
    lhs: find("8-update").lhs,
    rhs: find("8-update").rhs.replace(
      "(1 - alpha) / sqrt(1 - alpha * alphaBarPrev) * eps",
      "(1 - alpha) / (1 - alpha * alphaBarPrev) * eps",
    ),
  },
  {
    name: "(8) sigma_t(1)^2 against betaTilde with alpha_t in place of alphaBar_t",
    lhs: `(${sigmaOne})^2`,
    rhs: "(1 - alphaBarPrev) / (1 - alpha) * (1 - alpha)",
  },
  {
    name: "(8) DDIM at eta = 0.5 against DDPM",
    lhs: substitute(EQUATIONS[3].expressions.prevSample, {
      sigma: substitute(EQUATIONS[4].expressions.sigma, { eta: "0.5" }),
    }),
    rhs: find("8-update").rhs,
  },
  {
    name: "(3) the x0 prediction without the sqrt on alphaBar_t",
    lhs:
      "(sqrt(alpha * alphaBarPrev) * x0 + sqrt(1 - alpha * alphaBarPrev) * eps - sqrt(1 - alpha * alphaBarPrev) * eps) / (alpha * alphaBarPrev)",
    rhs: "x0",
  },
  {
    name: "(9) the ODE step with sqrt((1 - alphaBar) / alphaBar) replaced by sqrt(1 - alphaBar) / alphaBar",
    lhs: find("9-eta-zero").lhs.replace(
      "sqrt((1 - alphaBarPrev) / alphaBarPrev)",
      "sqrt(1 - alphaBarPrev) / alphaBarPrev",
    ),
    rhs: find("9-eta-zero").rhs,
  },
  {
    name: "(10) DDIM at eta = 1 with the unclipped noise against DDPM's clipped update",
    lhs: substitute("sqrt(alphaBarPrev) * x0Clipped + sqrt(1 - alphaBarPrev - sigma^2) * eps + sigma * z", {
      sigma: sigmaOne,
    }),
    rhs: find("10-clipped-model-output").rhs,
  },
  {
    name: "(11) EDICT's inversion undoing E1 before E2 (y_t from eps(y) in place of eps(x^inter))",
    lhs: substitute(EQUATIONS[10].expressions.yBack.replace("epsX", "epsY"), {
      xNew: EQUATIONS[10].expressions.xNew,
      yNew: EQUATIONS[10].expressions.yNew,
    }),
    rhs: "yt",
    positive: [...POSITIVE_SCHEDULE, "p"],
  },
  {
    name: "(11) EDICT's averaging layers undone in the wrong order (x^inter first)",
    lhs: "(xNew - (1 - p) * yNew) / p",
    rhs: "xInter",
    positive: ["p"],
  },
  {
    name: "(12) BDIA's inverse with the sign of (1 - gamma) z_i flipped",
    lhs: substitute(
      EQUATIONS[11].expressions.nextSample.replace("(zPrev - (1 - gamma) * zi", "(zPrev + (1 - gamma) * zi"),
      {
        zPrev: EQUATIONS[11].expressions.prevSample,
      },
    ),
    rhs: "zNext",
    positive: BDIA_POSITIVE,
  },
  {
    name: "(12) BDIA's inverse without the division by gamma",
    lhs: substitute(EQUATIONS[11].expressions.nextSample.replace(") / gamma +", ") +"), {
      zPrev: EQUATIONS[11].expressions.prevSample,
    }),
    rhs: "zNext",
    positive: BDIA_POSITIVE,
  },
  {
    name: "(12) BDIA at gamma = 0.5 against the DDIM update",
    lhs: substitute(EQUATIONS[11].expressions.prevSample, { gamma: "0.5" }),
    rhs: find("12-gamma-zero-is-ddim").rhs,
    positive: BDIA_POSITIVE,
  },
  {
    name: "(13) DPM-Solver-1 with e^h + 1 where e^h - 1 belongs",
    lhs: find("13-dpm-solver-1-is-ddim").lhs.replace(" - 1) * eps", " + 1) * eps"),
    rhs: find("13-dpm-solver-1-is-ddim").rhs,
    positive: POSITIVE_SCHEDULE,
  },
  {
    name: "(13) DPM-Solver-1 with alpha_s / alpha_t where alpha_t / alpha_s belongs",
    lhs: find("13-dpm-solver-1-is-ddim").lhs.replace(
      "sqrt(alphaBarPrev) / sqrt(alpha * alphaBarPrev) * xt",
      "sqrt(alpha * alphaBarPrev) / sqrt(alphaBarPrev) * xt",
    ),
    rhs: find("13-dpm-solver-1-is-ddim").rhs,
    positive: POSITIVE_SCHEDULE,
  },
  {
    name: "(13) DPM-Solver++'s first-order step with e^-h + 1 where e^-h - 1 belongs",
    lhs: find("13-dpm-solver-pp-1-is-ddim").lhs.replace(" - 1) * (", " + 1) * ("),
    rhs: find("13-dpm-solver-pp-1-is-ddim").rhs,
    positive: POSITIVE_SCHEDULE,
  },
  {
    name: "(13) e^h (not e^(2h)) as the ratio of the signal-to-noise ratios",
    lhs: EQUATIONS[12].expressions.expH,
    rhs: find("13-exp-h-snr").rhs,
    positive: POSITIVE_SCHEDULE,
  },
  {
    name: "(1) the variance without the sigma_t^2 term",
    lhs: "(sqrt(1 - alphaBarPrev - sigma^2) / sqrt(1 - alpha * alphaBarPrev))^2 * (1 - alpha * alphaBarPrev)",
    rhs: "1 - alphaBarPrev",
  },
];

describe("plausible but false variants are not proved", () => {
  for (const variant of falseVariants) {
    test(`${variant.name} is not proved`, () => {
      // the variant really is false: it differs numerically somewhere in the domain
      const gaps = [1, 2, 3].map((seed) =>
        Math.abs(evaluateAt(variant.lhs, point(seed)) - evaluateAt(variant.rhs, point(seed)))
      );
      expect(Math.max(...gaps)).toBeGreaterThan(1e-6);
      const positive = variant.positive ?? [...POSITIVE_SCHEDULE, "1 - alphaBarPrev - sigma^2"];
      const proof = proveIdentity(variant.lhs, variant.rhs, { positive });
      expect(proof.proved).toBe(false);
      expect(proof.steps.at(-1)).toMatch(/≠ 0: not proved$/);
    });
  }
});
