/**
 * The registry of the DDIM paper's equations, numbered (1)-(10) as docs/math.md numbers them, of the exactly
 * invertible steps built on them, (11) EDICT and (12) BDIA-DDIM, and of (13) first-order DPM-Solver, as mathjs
 * expression strings, with the identities that {@link proveIdentity} proves about them.
 *
 * | Paper symbol              | Code name      | Meaning                                                         |
 * | ------------------------- | -------------- | --------------------------------------------------------------- |
 * | alpha_t                   | `alpha`        | alphaBar_t / alphaBar_{t-1} (for consecutive steps: 1 - beta_t) |
 * | alphaBar_{t-1}            | `alphaBarPrev` | cumulative product at the previous (earlier) timestep           |
 * | alphaBar_t                | `alpha * alphaBarPrev` | written as a product so every identity is provable      |
 * | beta_t                    | `1 - alpha`    | the forward process's noise variance at step t                 |
 * | x_0, x_t                  | `x0`, `xt`     | clean sample, noisy sample at t                                 |
 * | epsilon_theta(x_t, t)     | `eps`          | the model's noise prediction                                    |
 * | epsilon_t (fresh noise)   | `z`            | standard normal noise drawn for the step                        |
 * | sigma_t                   | `sigma`        | the step's noise scale                                          |
 * | eta                       | `eta`          | interpolates DDIM (0) and DDPM (1), paper eq. (16)              |
 * | clip(x0_hat)              | `x0Clipped`    | the predicted x0 after clipping (diffusers' `clip_sample`)      |
 * | x_t, y_t (EDICT)          | `xt`, `yt`     | EDICT's coupled pair at t                                       |
 * | eps(y_t), eps(x^inter)    | `epsY`, `epsX` | the two noise predictions of an EDICT step                      |
 * | p                         | `p`            | EDICT's mixing weight                                           |
 * | z_{i+1}, z_i, z_{i-1}     | `zNext`, `zi`, `zPrev` | BDIA's three consecutive samples (z_i at alphaBar_t)    |
 * | alphaBar_{i+1}            | `alphaNext * alpha * alphaBarPrev` | alphaBar one schedule entry noisier         |
 * | gamma                     | `gamma`        | BDIA's weight of the backward DDIM step                         |
 * | alpha_s, sigma_s (DPM)    | `sqrt(alpha * alphaBarPrev)`, `sqrt(1 - alpha * alphaBarPrev)` | DPM-Solver's pair at s  |
 * | alpha_t, sigma_t (DPM)    | `sqrt(alphaBarPrev)`, `sqrt(1 - alphaBarPrev)` | the pair at t, one step less noisy      |
 * | e^h, h = lambda_t - lambda_s | `(alpha_t / sigma_t) / (alpha_s / sigma_s)` | lambda = log(alpha / sigma), exponentiated |
 *
 * DDPM notation (Ho et al. 2020): alphaBar_t = alpha_1 ... alpha_t. The DDIM paper writes alpha_t for this
 * cumulative product; here it is always `alphaBar`.
 *
 * @module
 */

/**
 * The assumptions every identity needs: 0 < alpha < 1 and 0 < alphaBarPrev < 1, hence 0 < alphaBar_t < 1.
 *
 * alpha > 0, alphaBarPrev > 0, 1 - alpha > 0, 1 - alphaBarPrev > 0, 1 - alpha alphaBarPrev > 0
 *
 * @example
 * ```ts
 * import { POSITIVE_SCHEDULE } from "./equations.ts";
 * import { proveIdentity } from "./prove.ts";
 * const proof = proveIdentity("sqrt(alpha * alphaBarPrev)", "sqrt(alpha) * sqrt(alphaBarPrev)", {
 *   positive: POSITIVE_SCHEDULE,
 * });
 * if (!proof.proved) throw new Error("sqrt(ab) = sqrt(a) sqrt(b) holds for positive a and b");
 * ```
 */
export const POSITIVE_SCHEDULE: readonly string[] = Object.freeze([
  "alpha",
  "alphaBarPrev",
  "1 - alpha",
  "1 - alphaBarPrev",
  "1 - alpha * alphaBarPrev",
]);

/** One identity to prove: `lhs = rhs` for all values where the `positive` expressions are > 0. */
export interface Identity {
  /** A stable id, used by tests and docs anchors (e.g. `"7-eta-one"`). */
  id: string;
  /** What the identity says, in one English sentence. */
  statement: string;
  /** The left side, a mathjs expression string. */
  lhs: string;
  /** The right side, a mathjs expression string. */
  rhs: string;
  /** Expressions assumed > 0. */
  positive: readonly string[];
}

/**
 * The assumptions of the BDIA identities: those of POSITIVE_SCHEDULE, a third level alphaBar_{i+1} = alphaNext alphaBar_t
 * in (0, 1), and gamma > 0 (the inverse divides by it).
 *
 * alphaNext > 0, 1 - alphaNext > 0, 1 - alphaNext alpha alphaBarPrev > 0, gamma > 0
 *
 * @example
 * ```ts
 * import { BDIA_POSITIVE } from "./equations.ts";
 * if (!BDIA_POSITIVE.includes("gamma")) throw new Error("BDIA's gamma is positive");
 * ```
 */
export const BDIA_POSITIVE: readonly string[] = Object.freeze([
  ...POSITIVE_SCHEDULE,
  "alphaNext",
  "1 - alphaNext",
  "1 - alphaNext * alpha * alphaBarPrev",
  "gamma",
]);

/** One numbered equation of docs/math.md. */
export interface Equation {
  /** The number docs/math.md gives it, 1 to 13. */
  number: number;
  /** A short title. */
  title: string;
  /** The DDIM paper's (arXiv 2010.02502) equation number, or a note where the paper has none. */
  paperEquation: string;
  /** The equation's named expressions, mathjs strings in the variables of the notation table. */
  expressions: Readonly<Record<string, string>>;
  /** The identities proved about it. */
  identities: readonly Identity[];
}

/**
 * Substitute expressions for variables in a mathjs expression string, textually by whole-word match.
 *
 * substitute(e, {v: s}) = e with every variable v replaced by (s).
 *
 * @param expression a mathjs expression string
 * @param values variable name -> expression string to put in its place (parenthesized unless a name or number)
 * @returns the expression with the substitutions made
 * @example
 * ```ts
 * import { substitute } from "./equations.ts";
 * const result = substitute("sqrt(a) * b", { a: "x + 1" });
 * if (result !== "sqrt((x + 1)) * b") throw new Error(`got ${result}`);
 * ```
 */
export function substitute(expression: string, values: Readonly<Record<string, string>>): string {
  const wrap = (
    value: string,
  ) => (/^([A-Za-z_][A-Za-z0-9_]*|\d+(\.\d+)?)$/.test(value.trim()) ? value.trim() : `(${value})`);
  return expression.replace(
    /[A-Za-z_][A-Za-z0-9_]*/g,
    (name) => (Object.hasOwn(values, name) ? wrap(values[name]) : name),
  );
}

// The building blocks, written once.
const alphaBarT = "alpha * alphaBarPrev";
/** (3) the x0 prediction from the model's noise. */
const predX0 = `(xt - sqrt(1 - ${alphaBarT}) * eps) / sqrt(${alphaBarT})`;
/** (5) sigma_t(eta), paper eq. (16). */
const sigmaEta = `eta * sqrt((1 - alphaBarPrev) / (1 - ${alphaBarT})) * sqrt(1 - ${alphaBarT} / alphaBarPrev)`;
const sigmaOne = substitute(sigmaEta, { eta: "1" });
/** DDPM's posterior variance betaTilde_t = (1 - alphaBar_{t-1}) / (1 - alphaBar_t) * beta_t (Ho et al. eq. 7). */
const betaTilde = `(1 - alphaBarPrev) / (1 - ${alphaBarT}) * (1 - alpha)`;
/** (1) mean of q_sigma(x_{t-1} | x_t, x_0), paper eq. (7). */
const posteriorMean =
  `sqrt(alphaBarPrev) * x0 + sqrt(1 - alphaBarPrev - sigma^2) * (xt - sqrt(${alphaBarT}) * x0) / sqrt(1 - ${alphaBarT})`;
/** (4) the DDIM update, paper eq. (12). */
const ddimStep = `sqrt(alphaBarPrev) * (${predX0}) + sqrt(1 - alphaBarPrev - sigma^2) * eps + sigma * z`;
/** (6) the DDPM update (Ho et al. Algorithm 2). */
const ddpmStep = `(xt - (1 - alpha) / sqrt(1 - ${alphaBarT}) * eps) / sqrt(alpha) + sigma * z`;
/** DDPM's posterior mean with x0 given (Ho et al. eq. 7), the form diffusers' DDPMScheduler computes. */
const ddpmPosteriorMean = `sqrt(alphaBarPrev) * (1 - alpha) / (1 - ${alphaBarT}) * x0 + ` +
  `sqrt(alpha) * (1 - alphaBarPrev) / (1 - ${alphaBarT}) * xt`;
/** (9) the ODE (Euler) step, paper eq. (13), solved for x_{t-dt}. */
const odeStep = `sqrt(alphaBarPrev) * (xt / sqrt(${alphaBarT}) + ` +
  `(sqrt((1 - alphaBarPrev) / alphaBarPrev) - sqrt((1 - ${alphaBarT}) / (${alphaBarT}))) * eps)`;
/** (9) reversed: from x at alphaBarPrev up to alphaBar_t (inversion), with the same eps. */
const odeStepReversed = `sqrt(${alphaBarT}) * (xPrev / sqrt(alphaBarPrev) + ` +
  `(sqrt((1 - ${alphaBarT}) / (${alphaBarT})) - sqrt((1 - alphaBarPrev) / alphaBarPrev)) * eps)`;
/** (10) the noise re-derived from the clipped x0 (diffusers' use_clipped_model_output). */
const epsFromClipped = `(xt - sqrt(${alphaBarT}) * x0Clipped) / sqrt(1 - ${alphaBarT})`;

const withSigmaPositive = [...POSITIVE_SCHEDULE, "1 - alphaBarPrev - sigma^2"];

/** DDIM with sigma = 0 from alphaBar `from` to alphaBar `to` applied to `x` with noise `e`: eq. (4) in general form. */
const ddimFromTo = (x: string, e: string, from: string, to: string) =>
  `sqrt(${to}) * ((${x}) - sqrt(1 - ${from}) * (${e})) / sqrt(${from}) + sqrt(1 - ${to}) * (${e})`;
/** That step as x_s = a x_t + b eps from alphaBar_t to alphaBar_{t-1} (EDICT's a_t and b_t). */
const edictA = `sqrt(alphaBarPrev / (${alphaBarT}))`;
const edictB = `(sqrt(1 - alphaBarPrev) - sqrt(alphaBarPrev / (${alphaBarT})) * sqrt(1 - ${alphaBarT}))`;
/** (11) EDICT's denoising step E1-E4 (Wallace et al. 2022), eps(y_t) = epsY and eps(x^inter) = epsX. */
const edictXInter = `${edictA} * xt + ${edictB} * epsY`;
const edictYInter = `${edictA} * yt + ${edictB} * epsX`;
const edictXNew = `p * (${edictXInter}) + (1 - p) * (${edictYInter})`;
const edictYNew = `p * (${edictYInter}) + (1 - p) * (${edictXNew})`;
/** (11) its inversion E4'-E1', from (xNew, yNew). */
const edictYInterBack = "(yNew - (1 - p) * xNew) / p";
const edictXInterBack = `(xNew - (1 - p) * (${edictYInterBack})) / p`;
const edictYBack = `((${edictYInterBack}) - ${edictB} * epsX) / ${edictA}`;
const edictXBack = `((${edictXInterBack}) - ${edictB} * epsY) / ${edictA}`;
/** (12) BDIA's increments from z_i: DDIM to alphaBar_{i-1} and back to alphaBar_{i+1}, minus z_i. */
const alphaBarNext = `alphaNext * ${alphaBarT}`;
const bdiaForward = `(${ddimFromTo("zi", "eps", alphaBarT, "alphaBarPrev")} - zi)`;
const bdiaBackward = `(${ddimFromTo("zi", "eps", alphaBarT, alphaBarNext)} - zi)`;
/** (12) the BDIA-DDIM update B1 (Zhang et al. 2023) and B1' solved for z_{i+1}. */
const bdiaStep = `zNext - (1 - gamma) * (zNext - zi) - gamma * ${bdiaBackward} + ${bdiaForward}`;
const bdiaInverse = `(zPrev - (1 - gamma) * zi - ${bdiaForward}) / gamma + ${bdiaBackward}`;
/**
 * (13) DPM-Solver's notation (Lu et al. 2022, arXiv 2206.00927): x_s = alpha_s x0 + sigma_s eps with
 * alpha = sqrt(alphaBar), sigma = sqrt(1 - alphaBar), lambda = log(alpha / sigma). A step goes from s (alphaBar_s =
 * alpha * alphaBarPrev, the registry's x_t) to t (alphaBar_t = alphaBarPrev). e^h for h = lambda_t - lambda_s is
 * exp(lambda_t) / exp(lambda_s) = (alpha_t / sigma_t) / (alpha_s / sigma_s), so no exponential or logarithm remains.
 */
const dpmAlphaS = `sqrt(${alphaBarT})`;
const dpmSigmaS = `sqrt(1 - ${alphaBarT})`;
const dpmAlphaT = "sqrt(alphaBarPrev)";
const dpmSigmaT = "sqrt(1 - alphaBarPrev)";
const dpmExpH = `((${dpmAlphaT} / ${dpmSigmaT}) / (${dpmAlphaS} / ${dpmSigmaS}))`;
const dpmExpMinusH = `((${dpmAlphaS} / ${dpmSigmaS}) / (${dpmAlphaT} / ${dpmSigmaT}))`;
/** (13) DPM-Solver-1 (noise prediction): x_t = (alpha_t / alpha_s) x_s - sigma_t (e^h - 1) eps. */
const dpmSolver1 = `${dpmAlphaT} / ${dpmAlphaS} * xt - ${dpmSigmaT} * (${dpmExpH} - 1) * eps`;
/** (13) DPM-Solver++(1) (data prediction, arXiv 2211.01095): x_t = (sigma_t / sigma_s) x_s - alpha_t (e^-h - 1) x0. */
const dpmSolverPlusPlus1 = `${dpmSigmaT} / ${dpmSigmaS} * xt - ${dpmAlphaT} * (${dpmExpMinusH} - 1) * (${predX0})`;

// The registry; exported frozen as EQUATIONS below.
const equations: Equation[] = [
  {
    number: 1,
    title: "DDIM's non-Markovian posterior q_sigma(x_{t-1} | x_t, x_0)",
    paperEquation: "(7)",
    expressions: { mean: posteriorMean, variance: "sigma^2" },
    identities: [
      {
        id: "1-mean",
        statement: "Averaged over x_t ~ q(x_t | x_0), the posterior mean is the marginal mean sqrt(alphaBar_{t-1}) x0",
        lhs: substitute(posteriorMean, { xt: `sqrt(${alphaBarT}) * x0` }),
        rhs: "sqrt(alphaBarPrev) * x0",
        positive: withSigmaPositive,
      },
      {
        id: "1-variance",
        statement: "The posterior's x_t coefficient squared times Var(x_t) plus sigma_t^2 is the marginal variance",
        lhs: `(sqrt(1 - alphaBarPrev - sigma^2) / sqrt(1 - ${alphaBarT}))^2 * (1 - ${alphaBarT}) + sigma^2`,
        rhs: "1 - alphaBarPrev",
        positive: withSigmaPositive,
      },
    ],
  },
  {
    number: 2,
    title: "The marginal q(x_t | x_0) = N(sqrt(alphaBar_t) x0, (1 - alphaBar_t) I)",
    paperEquation: "(4) (DDPM's forward marginal)",
    expressions: { mean: `sqrt(${alphaBarT}) * x0`, variance: `1 - ${alphaBarT}` },
    identities: [
      {
        id: "2-mean",
        statement: "One forward step x_t = sqrt(alpha_t) x_{t-1} + sqrt(beta_t) noise carries the mean forward",
        lhs: "sqrt(alpha) * sqrt(alphaBarPrev) * x0",
        rhs: `sqrt(${alphaBarT}) * x0`,
        positive: POSITIVE_SCHEDULE,
      },
      {
        id: "2-variance",
        statement:
          "One forward step carries the variance forward: alpha_t (1 - alphaBar_{t-1}) + beta_t = 1 - alphaBar_t",
        lhs: "sqrt(alpha)^2 * (1 - alphaBarPrev) + sqrt(1 - alpha)^2",
        rhs: `1 - ${alphaBarT}`,
        positive: POSITIVE_SCHEDULE,
      },
    ],
  },
  {
    number: 3,
    title: "The x0 prediction x0_hat = (x_t - sqrt(1 - alphaBar_t) eps) / sqrt(alphaBar_t)",
    paperEquation: "(9)",
    expressions: { predX0 },
    identities: [
      {
        id: "3-inverts-marginal",
        statement: "If x_t = sqrt(alphaBar_t) x0 + sqrt(1 - alphaBar_t) eps, the prediction returns x0 exactly",
        lhs: substitute(predX0, { xt: `sqrt(${alphaBarT}) * x0 + sqrt(1 - ${alphaBarT}) * eps` }),
        rhs: "x0",
        positive: POSITIVE_SCHEDULE,
      },
    ],
  },
  {
    number: 4,
    title: "The DDIM update: predicted x0, direction pointing to x_t, and noise",
    paperEquation: "(12)",
    expressions: { prevSample: ddimStep },
    identities: [
      {
        id: "4-posterior-sample",
        statement: "The DDIM update is a sample of q_sigma(x_{t-1} | x_t, x0) with x0 replaced by its prediction (3)",
        lhs: ddimStep,
        rhs: `${substitute(posteriorMean, { x0: predX0 })} + sigma * z`,
        positive: withSigmaPositive,
      },
    ],
  },
  {
    number: 5,
    title: "sigma_t(eta)",
    paperEquation: "(16)",
    expressions: { sigma: sigmaEta },
    identities: [
      {
        id: "5-eta-times-ddpm",
        statement: "sigma_t(eta) is eta times DDPM's posterior standard deviation sqrt(betaTilde_t)",
        lhs: sigmaEta,
        rhs: `eta * sqrt(${betaTilde})`,
        positive: POSITIVE_SCHEDULE,
      },
    ],
  },
  {
    number: 6,
    title: "The DDPM update x_{t-1} = (x_t - beta_t / sqrt(1 - alphaBar_t) eps) / sqrt(alpha_t) + sigma_t z",
    paperEquation: "DDPM (Ho et al. 2020) eq. (11), Algorithm 2",
    expressions: { prevSample: ddpmStep, posteriorMean: ddpmPosteriorMean },
    identities: [
      {
        id: "6-posterior-mean",
        statement: "The DDPM update is DDPM's posterior mean (the form diffusers computes) at x0 = x0_hat, plus noise",
        lhs: ddpmStep,
        rhs: `${substitute(ddpmPosteriorMean, { x0: predX0 })} + sigma * z`,
        positive: POSITIVE_SCHEDULE,
      },
    ],
  },
  {
    number: 7,
    title: "The key identity at eta = 1",
    paperEquation: "none (implied by the remark after (16))",
    expressions: { direction: `sqrt(1 - alphaBarPrev - (${sigmaOne})^2)` },
    identities: [
      {
        id: "7-eta-one",
        statement:
          "With eta = 1, sqrt(1 - alphaBar_{t-1} - sigma_t^2) = (1 - alphaBar_{t-1}) sqrt(alpha_t) / sqrt(1 - alphaBar_t)",
        lhs: `sqrt(1 - alphaBarPrev - (${sigmaOne})^2)`,
        rhs: `(1 - alphaBarPrev) * sqrt(alpha) / sqrt(1 - ${alphaBarT})`,
        positive: POSITIVE_SCHEDULE,
      },
    ],
  },
  {
    number: 8,
    title: "DDIM with eta = 1 is DDPM",
    paperEquation: "remark after (16)",
    expressions: { ddim: substitute(ddimStep, { sigma: sigmaOne }), ddpm: substitute(ddpmStep, { sigma: sigmaOne }) },
    identities: [
      {
        id: "8-variance",
        statement: "sigma_t(1)^2 equals DDPM's posterior variance betaTilde_t",
        lhs: `(${sigmaOne})^2`,
        rhs: betaTilde,
        positive: POSITIVE_SCHEDULE,
      },
      {
        id: "8-update",
        statement: "With eta = 1 the DDIM update (4) equals the DDPM update (6) for the same eps and z",
        lhs: substitute(ddimStep, { sigma: sigmaOne }),
        rhs: substitute(ddpmStep, { sigma: `sqrt(${betaTilde})` }),
        positive: POSITIVE_SCHEDULE,
      },
    ],
  },
  {
    number: 9,
    title: "The ODE form and its reversal (inversion)",
    paperEquation: "(13)",
    expressions: { prevSample: odeStep, nextSample: odeStepReversed },
    identities: [
      {
        id: "9-eta-zero",
        statement: "The Euler step of the ODE (13) equals the DDIM update (4) at sigma = 0",
        lhs: odeStep,
        rhs: substitute(ddimStep, { sigma: "0" }),
        positive: POSITIVE_SCHEDULE,
      },
      {
        id: "9-reversed-undoes",
        statement: "The reversed step (inversion), with the same eps, takes the DDIM eta = 0 output back to x_t",
        lhs: substitute(odeStepReversed, { xPrev: substitute(ddimStep, { sigma: "0" }) }),
        rhs: "xt",
        positive: POSITIVE_SCHEDULE,
      },
      {
        id: "9-reversed-as-ddim",
        statement: "The reversed step is a DDIM eta = 0 step from alphaBar_{t-1} up to alphaBar_t",
        lhs: odeStepReversed,
        rhs:
          `sqrt(${alphaBarT}) * (xPrev - sqrt(1 - alphaBarPrev) * eps) / sqrt(alphaBarPrev) + sqrt(1 - ${alphaBarT}) * eps`,
        positive: POSITIVE_SCHEDULE,
      },
    ],
  },
  {
    number: 10,
    title: "Clipping: DDIM at eta = 1 with the re-derived noise equals DDPM's clipped update",
    paperEquation: "none (diffusers' clip_sample and use_clipped_model_output)",
    expressions: {
      epsFromClipped,
      ddimClipped: substitute(
        `sqrt(alphaBarPrev) * x0Clipped + sqrt(1 - alphaBarPrev - sigma^2) * epsUsed + sigma * z`,
        {
          sigma: sigmaOne,
        },
      ),
      ddpmClipped: `${substitute(ddpmPosteriorMean, { x0: "x0Clipped" })} + sigma * z`,
    },
    identities: [
      {
        id: "10-clipped-model-output",
        statement: "With the noise re-derived from the clipped x0, DDIM at eta = 1 equals DDPM's clipped update",
        lhs: substitute(
          `sqrt(alphaBarPrev) * x0Clipped + sqrt(1 - alphaBarPrev - sigma^2) * (${epsFromClipped}) + sigma * z`,
          { sigma: sigmaOne },
        ),
        rhs: `${substitute(ddpmPosteriorMean, { x0: "x0Clipped" })} + sqrt(${betaTilde}) * z`,
        positive: POSITIVE_SCHEDULE,
      },
      {
        id: "10-mismatch",
        statement: "With the unclipped noise, DDIM at eta = 1 differs from DDPM's clipped update by " +
          "sqrt(1 - alphaBar_{t-1} - sigma_t^2) (eps - eps_clipped)",
        lhs: substitute(`sqrt(alphaBarPrev) * x0Clipped + sqrt(1 - alphaBarPrev - sigma^2) * eps + sigma * z`, {
          sigma: sigmaOne,
        }) + ` - (${substitute(ddpmPosteriorMean, { x0: "x0Clipped" })} + sqrt(${betaTilde}) * z)`,
        rhs: `(1 - alphaBarPrev) * sqrt(alpha) / sqrt(1 - ${alphaBarT}) * (eps - (${epsFromClipped}))`,
        positive: POSITIVE_SCHEDULE,
      },
    ],
  },
  {
    number: 11,
    title: "EDICT's coupled step and its exact inverse",
    paperEquation: "EDICT (Wallace, Gokul and Naik 2022, arXiv 2211.12446), denoising step and inversion",
    expressions: {
      xInter: edictXInter,
      yInter: edictYInter,
      xNew: edictXNew,
      yNew: edictYNew,
      yBack: edictYBack,
      xBack: edictXBack,
    },
    identities: [
      {
        id: "11-half-step-is-ddim",
        statement: "EDICT's half-step a_t x_t + b_t eps is the DDIM update (4) at sigma = 0",
        lhs: `${edictA} * xt + ${edictB} * eps`,
        rhs: substitute(ddimStep, { sigma: "0" }),
        positive: POSITIVE_SCHEDULE,
      },
      {
        id: "11-mixing-undone-y",
        statement: "Undoing the averaging layers gives y^inter back: (y_{t-1} - (1 - p) x_{t-1}) / p = y^inter",
        lhs: substitute(edictYInterBack, {
          xNew: "p * xInter + (1 - p) * yInter",
          yNew: "p * yInter + (1 - p) * (p * xInter + (1 - p) * yInter)",
        }),
        rhs: "yInter",
        positive: ["p"],
      },
      {
        id: "11-mixing-undone-x",
        statement: "Undoing the averaging layers gives x^inter back, so the inverse evaluates eps at the same x^inter",
        lhs: substitute(edictXInterBack, {
          xNew: "p * xInter + (1 - p) * yInter",
          yNew: "p * yInter + (1 - p) * (p * xInter + (1 - p) * yInter)",
        }),
        rhs: "xInter",
        positive: ["p"],
      },
      {
        id: "11-inverse-undoes-y",
        statement:
          "The inversion composed with the denoising step returns y_t, with eps(x^inter) the same value both ways",
        lhs: substitute(edictYBack, { xNew: edictXNew, yNew: edictYNew }),
        rhs: "yt",
        positive: [...POSITIVE_SCHEDULE, "p"],
      },
      {
        id: "11-inverse-undoes-x",
        statement: "The inversion composed with the denoising step returns x_t, with eps(y_t) the same value both ways",
        lhs: substitute(edictXBack, { xNew: edictXNew, yNew: edictYNew }),
        rhs: "xt",
        positive: [...POSITIVE_SCHEDULE, "p"],
      },
    ],
  },
  {
    number: 12,
    title: "BDIA-DDIM's update, its inverse, and gamma = 0 as DDIM",
    paperEquation: "BDIA-DDIM (Zhang, Lewis and Kleijn 2023, arXiv 2307.10829), the update of z_{i-1}",
    expressions: {
      prevSample: bdiaStep,
      nextSample: bdiaInverse,
      forwardIncrement: bdiaForward,
      backwardIncrement: bdiaBackward,
    },
    identities: [
      {
        id: "12-inverse-undoes",
        statement: "B1 solved for z_{i+1} (B1') applied to B1's output returns z_{i+1}, for gamma > 0",
        lhs: substitute(bdiaInverse, { zPrev: bdiaStep }),
        rhs: "zNext",
        positive: BDIA_POSITIVE,
      },
      {
        id: "12-step-undoes-inverse",
        statement:
          "B1 applied to B1''s output returns z_{i-1}: the step and its inverse are inverse maps of z_{i+1} and z_{i-1}",
        lhs: substitute(bdiaStep, { zNext: bdiaInverse }),
        rhs: "zPrev",
        positive: BDIA_POSITIVE,
      },
      {
        id: "12-gamma-zero-is-ddim",
        statement: "With gamma = 0, BDIA's update is the DDIM update (4) at sigma = 0 from z_i",
        lhs: substitute(bdiaStep, { gamma: "0" }),
        rhs: substitute(ddimStep, { sigma: "0", xt: "zi" }),
        positive: BDIA_POSITIVE,
      },
    ],
  },
  {
    number: 13,
    title: "First-order DPM-Solver and DPM-Solver++ are DDIM with eta = 0",
    paperEquation: "DPM-Solver (Lu et al. 2022, arXiv 2206.00927), DPM-Solver-1; DPM-Solver++ (arXiv 2211.01095), " +
      "its first-order data-prediction form",
    expressions: { expH: dpmExpH, dpmSolver1, dpmSolverPlusPlus1 },
    identities: [
      {
        id: "13-exp-h-snr",
        statement: "e^(2h) is the ratio of the signal-to-noise ratios alphaBar / (1 - alphaBar) at t and at s",
        lhs: `${dpmExpH}^2`,
        rhs: `(alphaBarPrev / (1 - alphaBarPrev)) / ((${alphaBarT}) / (1 - ${alphaBarT}))`,
        positive: POSITIVE_SCHEDULE,
      },
      {
        id: "13-dpm-solver-1-is-ddim",
        statement:
          "DPM-Solver-1's step (alpha_t / alpha_s) x_s - sigma_t (e^h - 1) eps is the DDIM update (4) at sigma = 0",
        lhs: dpmSolver1,
        rhs: substitute(ddimStep, { sigma: "0" }),
        positive: POSITIVE_SCHEDULE,
      },
      {
        id: "13-dpm-solver-pp-1-is-ddim",
        statement:
          "DPM-Solver++'s first-order step (sigma_t / sigma_s) x_s - alpha_t (e^-h - 1) x0_hat, with x0_hat from (3), " +
          "is the DDIM update (4) at sigma = 0",
        lhs: dpmSolverPlusPlus1,
        rhs: substitute(ddimStep, { sigma: "0" }),
        positive: POSITIVE_SCHEDULE,
      },
    ],
  },
];

/**
 * The equations (1)-(13) of docs/math.md with the identities proved about each.
 *
 * Each identity is `lhs = rhs` in the variables of the module's notation table, with alphaBar_t = alpha alphaBar_{t-1}.
 *
 * @example
 * ```ts
 * import { EQUATIONS } from "./equations.ts";
 * import { proveIdentity } from "./prove.ts";
 * const key = EQUATIONS[6].identities[0];
 * if (!proveIdentity(key.lhs, key.rhs, { positive: key.positive }).proved) throw new Error(`${key.lhs} = ${key.rhs}`);
 * ```
 */
export const EQUATIONS: readonly Equation[] = Object.freeze(equations);

/**
 * Every identity of the registry, in order, with the number of the equation it belongs to.
 *
 * identities() = concat over (1)-(13) of each equation's identities.
 *
 * @returns `{ equation, identity }` pairs
 * @example
 * ```ts
 * import { allIdentities } from "./equations.ts";
 * const all = allIdentities();
 * if (all.length <= 10 || !all.every(({ equation }) => Number.isInteger(equation))) throw new Error("expected many");
 * ```
 */
export function allIdentities(): { equation: number; identity: Identity }[] {
  return EQUATIONS.flatMap((equation) =>
    equation.identities.map((identity) => ({ equation: equation.number, identity }))
  );
}
