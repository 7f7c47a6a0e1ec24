/**
 * Writes notebooks/12_ddim_is_euler.ipynb, unexecuted: `deno run -A tools/notebooks/12_ddim_is_euler.ts`, then
 * `notebooks/run.sh 12_ddim_is_euler.ipynb` executes it in place.
 *
 * Cells are written with String.raw so LaTeX keeps its backslashes; inside them "\`" stands for a backtick and
 * "\${" for a template placeholder of the notebook's own code.
 *
 * @module
 */

import { notebookWriter } from "./_notebook.ts";

const notebook = notebookWriter("12_ddim_is_euler");
const { md, code } = notebook;

md(String.raw`
# 12. DDIM is Euler

Previous: [11. Training](11_training.ipynb) · This is the last chapter.

Section 4.3 of the DDIM paper rewrites the deterministic sampler ($\eta = 0$) as a numerical method for an ordinary
differential equation, the probability-flow ODE. This chapter follows that thread to its end:

| part | model | why this model |
|---|---|---|
| DDIM with $\eta = 0$ is Euler's method; diffusers' \`EulerDiscreteScheduler\` gives the same numbers | both | an identity of formulas holds for any network |
| the higher-order samplers that reuse the same network: Heun, PNDM (PLMS), DPM-Solver++; first-order DPM-Solver++ is DDIM again | both | their formulas, and one identity checked like the first |
| each sampler's global error against the exact ODE solution, against the number of model evaluations | \`builtin:gaussian32\` (exact) | one Gaussian: its ODE has a closed-form solution, so the sampler's error alone is measured |
| the Table 1 metric at 5, 10 and 20 evaluations | \`builtin:ddpm-shapes32\` (trained) | few-step quality is about how a sampler copes with a network's errors |
`);

code(String.raw`
import {
  allIdentities,
  builtinMixture,
  DDIMScheduler,
  DPMSolverMultistepScheduler,
  encodePng,
  fitConvergenceOrder,
  fromPretrained,
  HeunDiscreteScheduler,
  imageGrid,
  meanLogLikelihood,
  plotCurves,
  probabilityFlowSolution,
  proveIdentity,
  runSampling,
  samplingLoop,
  schedulerFromConfig,
  show,
  showTable,
  Tensor,
  TorchGenerator,
} from "../mod.ts";
`);

md(String.raw`
**Parameters.** Change one and rerun the notebook.

**Use a real checkpoint.** Set \`LEARNED_MODEL\` to a diffusers checkpoint folder (docs/checkpoints.md), e.g.
\`"../checkpoints/ddpm-cifar10-32"\`: the samplers and the sample grids work as they are, but the log-likelihood gap
needs the exact data law, which only the builtin models have, so drop that column. \`EXACT_MODEL\` must stay a single
Gaussian: \`probabilityFlowSolution\` solves only that ODE in closed form.
`);

code(String.raw`
const EXACT_MODEL = "builtin:gaussian32"; // one Gaussian fitted to the shapes images (notebook 2)
const LEARNED_MODEL = "builtin:ddpm-shapes32"; // a DDPM UNet trained on the shapes law (notebook 11)
const SEED = 14; // x_T of the convergence study
const SAMPLES = 4;
const NFE_GRID = [5, 9, 19, 49, 99, 199, 499]; // odd, so that Heun (2S - 1 evaluations) lands on every one
const FIT_FROM = 49; // orders are fitted over NFE >= FIT_FROM, where the error follows a power law
const DENSE_STEPS = [5, 10, 20, 40]; // S of the run with timesteps packed towards t = 0
const EQUAL_STEPS = 20; // steps of the DDIM-against-Euler run
const QUALITY_SEED = 2020; // x_T of the learned-model runs
const EXACT_DRAWS_SEED = 2021; // the exact samples the gap is measured against
const QUALITY_SAMPLES = 8;
const QUALITY_NFE = [5, 10, 20];
`);

md(String.raw`
## The ODE of the DDIM paper

With $\eta = 0$ ($\sigma_t = 0$) the DDIM update, eq. (12) of the paper (written with $\bar\alpha$ for the paper's
$\alpha$, as in the rest of the course), is

$$x_{t-1} = \sqrt{\bar\alpha_{t-1}}\,\frac{x_t - \sqrt{1 - \bar\alpha_t}\,\epsilon_\theta(x_t, t)}{\sqrt{\bar\alpha_t}}
+ \sqrt{1 - \bar\alpha_{t-1}}\;\epsilon_\theta(x_t, t).$$

| step | formula | what it does |
|---|---|---|
| 1 | $\dfrac{x_{t-1}}{\sqrt{\bar\alpha_{t-1}}} = \dfrac{x_t}{\sqrt{\bar\alpha_t}} + \left(\sqrt{\dfrac{1 - \bar\alpha_{t-1}}{\bar\alpha_{t-1}}} - \sqrt{\dfrac{1 - \bar\alpha_t}{\bar\alpha_t}}\right)\epsilon_\theta(x_t, t)$ | divide by $\sqrt{\bar\alpha_{t-1}}$: the paper's eq. (13) |
| 2 | $\bar x = x / \sqrt{\bar\alpha}$, $\;\sigma = \sqrt{(1 - \bar\alpha) / \bar\alpha}$, so $\bar\alpha = 1 / (\sigma^2 + 1)$ and $x_t = \bar x_t / \sqrt{\sigma_t^2 + 1}$ | change variables: $\bar x$ is the sample without the shrinking factor, $\sigma$ the noise-to-signal ratio |
| 3 | $\bar x_{t-1} = \bar x_t + (\sigma_{t-1} - \sigma_t)\;\epsilon_\theta\!\left(\bar x_t / \sqrt{\sigma_t^2 + 1},\, t\right)$ | (13) in the new variables |
| 4 | $\mathrm{d}\bar x = \epsilon_\theta\!\left(\bar x / \sqrt{\sigma^2 + 1}\right)\mathrm{d}\sigma$ | the ODE of the paper's eq. (14) |
| 5 | $y_{n+1} = y_n + h\,f(y_n, s_n)$ with $y = \bar x$, $s = \sigma$, $h = \sigma_{t-1} - \sigma_t$, $f = \epsilon_\theta$ | step 3 is Euler's method for step 4 |

Step 3 is exact algebra, so DDIM with $\eta = 0$ **is** Euler's method on (14), not an approximation of it; it runs
backwards in $\sigma$ (from $\sigma_T$ down to $0$), with step sizes set by the chosen timesteps.

diffusers' \`EulerDiscreteScheduler\` (Karras et al. 2022, Algorithm 2 without "churn") is written in Karras et al.'s
variables, which are these: its sample is $\bar x$ (it starts at standard deviation $\sigma_{\max}$, its
\`initNoiseSigma\`), the network sees $c_{\mathrm{in}}\bar x = \bar x / \sqrt{\sigma^2 + 1} = x_t$ (its
\`scaleModelInput\`), the denoised sample is $D = \bar x - \sigma\,\epsilon_\theta$, the slope is
$d = (\bar x - D) / \sigma = \epsilon_\theta$, and the step is $\bar x \leftarrow \bar x + (\sigma_{\text{next}} - \sigma)\,d$:
step 3 again. Two different codes, one formula; started from the same point with the same $\sigma$'s they must give
the same numbers. First the algebra by machine (identity 9-eta-zero of docs/math.md), then the numbers, on both models:
DDIM from $x_T$, Euler from $\bar x_T = \sqrt{\sigma_T^2 + 1}\,x_T$, both with the same timesteps. DDIM's clipping of
$\hat x_0$ is turned off (Euler has none).
`);

code(String.raw`
const { identity } = allIdentities().find(({ identity }) => identity.id === "9-eta-zero")!;
const proof = proveIdentity(identity.lhs, identity.rhs, { positive: identity.positive });
console.log(\`\${identity.statement}\nproved: \${proof.proved} (\${proof.steps.length} steps)\`);

const exactModel = await fromPretrained(EXACT_MODEL);
const learnedModel = await fromPretrained(LEARNED_MODEL);
type Loaded = typeof exactModel;
/** A scheduler of a diffusers class, made from a model's own scheduler config with some keys changed (from_config). */
const schedulerFor = (model: Loaded, className: string, changes: Record<string, unknown> = {}) =>
  schedulerFromConfig({ ...model.scheduler.toConfig(), ...changes, _class_name: className });
type AnyScheduler = ReturnType<typeof schedulerFor>;
const scaled = (x: Tensor, factor: number) => new Tensor(x.data.map((v) => v * factor), x.shape);
/**
 * Run a scheduler's loop from the variance-preserving x_T, after \`setTimesteps(steps)\` when \`steps\` is given (else
 * over the timesteps it has): the start is the sample whose model input is x_T, x_T / c_in. DDIM, PNDM and DPM-Solver
 * (c_in = 1) start at x_T itself, the samplers that work in x-bar (Euler, Heun) at sqrt(sigma_0^2 + 1) x_T, which is
 * x_T / sqrt(alphaBar_T).
 */
async function solve(model: Loaded, scheduler: AnyScheduler, xT: Tensor, steps?: number): Promise<Tensor> {
  if (steps !== undefined) scheduler.setTimesteps(steps);
  const cIn = scheduler.scaleModelInput(Tensor.from([1], [1, 1, 1, 1]), scheduler.timesteps[0]).data[0];
  let x = scaled(xT, 1 / cIn);
  for await (const step of samplingLoop(model.unet, scheduler, { sample: x })) x = step.x;
  return x;
}
const largest = (x: Tensor) => x.data.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
const largestDifference = (a: Tensor, b: Tensor) => a.data.reduce((m, v, k) => Math.max(m, Math.abs(v - b.data[k])), 0);
for (const [name, model] of [["exact", exactModel], ["learned", learnedModel]] as const) {
  const xT = new TorchGenerator(SEED).randn([4, 3, 32, 32]);
  const ddim = await solve(model, schedulerFor(model, "DDIMScheduler", { clip_sample: false }), xT, EQUAL_STEPS);
  const euler = await solve(model, schedulerFor(model, "EulerDiscreteScheduler"), xT, EQUAL_STEPS);
  console.log(
    \`\${name} model, \${EQUAL_STEPS} steps: largest |x_0(DDIM) - x_0(Euler)| = \` +
      \`\${largestDifference(ddim, euler).toExponential(1)} (largest |x_0| = \${largest(ddim).toFixed(2)})\`,
  );
}
`);

md(String.raw`
The two samplers agree to float32 rounding on both models (the differences printed above, against values of the size
printed beside them): they differ only in the order of float32 operations, $\bar x$ carried instead of $x$.
`);

md(String.raw`
## Higher-order samplers on the same network

Euler's method is first order: halving every step halves the global error (for a smooth right-hand side, once the
steps are small). The samplers below call the same noise-prediction network, unchanged, and combine its outputs more
cleverly. With $h = \sigma_{i+1} - \sigma_i$ and $\epsilon_i = \epsilon_\theta(\bar x_i / \sqrt{\sigma_i^2 + 1})$:

- **Heun** (Karras, Aittala, Aila and Laine 2022, Algorithm 1; \`HeunDiscreteScheduler\`): an Euler predictor, then the
  trapezoidal corrector with the slope at the predicted point,
  $$\tilde x = \bar x_i + h\,\epsilon_i, \qquad \bar x_{i+1} = \bar x_i + \tfrac{h}{2}\left(\epsilon_i + \epsilon_\theta\!\left(\tilde x / \sqrt{\sigma_{i+1}^2 + 1}\right)\right).$$
  Second order, two evaluations per step, except the last step to $\sigma = 0$, which is an Euler step (the corrector
  would need the network at $\sigma = 0$): $2S - 1$ evaluations for $S$ steps.
- **PNDM / PLMS** (Liu, Ren, Lin and Zhao 2022, "pseudo numerical methods"; \`PNDMScheduler\` with
  \`skip_prk_steps\`): keep DDIM's step as the "transfer" $\phi(x_t, \epsilon, t \to t')$ and feed it, instead of
  $\epsilon_\theta(x_t)$, the fourth-order Adams–Bashforth combination of the last four predictions,
  $$\epsilon' = \tfrac{1}{24}\left(55\,\epsilon_t - 59\,\epsilon_{t+\delta} + 37\,\epsilon_{t+2\delta} - 9\,\epsilon_{t+3\delta}\right),$$
  with lower-order combinations while fewer are stored; the first step is evaluated twice (a Heun-like start), so
  $S$ steps cost $S + 1$ evaluations.
- **DPM-Solver++** (Lu, Zhou, Bao, Chen, Li and Zhu 2022, arXiv 2211.01095): in $\lambda = \log(\alpha_t / \sigma_t)$
  with $\alpha_t = \sqrt{\bar\alpha_t}$, $\sigma_t = \sqrt{1 - \bar\alpha_t}$ and the data prediction
  $x_\theta = \hat x_0$, the ODE's solution is exactly
  $$x_t = \frac{\sigma_t}{\sigma_s}\,x_s + \sigma_t \int_{\lambda_s}^{\lambda_t} e^{\lambda}\,x_\theta(x_\lambda, \lambda)\,\mathrm{d}\lambda ;$$
  the linear part is integrated exactly and only $x_\theta$ is approximated. Holding $x_\theta$ constant gives
  $x_t = \frac{\sigma_t}{\sigma_s}x_s - \alpha_t\,(e^{-h} - 1)\,x_\theta$ with $h = \lambda_t - \lambda_s$ (first order);
  the multistep "2M" replaces $x_\theta$ by $D = (1 + \tfrac{1}{2r})\,x_\theta(t_{i-1}) - \tfrac{1}{2r}\,x_\theta(t_{i-2})$,
  $r = h_{i-1} / h_i$, one evaluation per step; "3M" adds a second divided difference of three stored outputs
  (\`DPMSolverMultistepScheduler\` with \`solver_order\` 2 or 3; the last step is first order when it ends at
  $\sigma = 0$).

**First-order DPM-Solver++ is DDIM.** With $e^{-h} = \dfrac{\alpha_s\,\sigma_t}{\sigma_s\,\alpha_t}$ and
$\hat x_0 = (x_s - \sigma_s\,\epsilon_\theta) / \alpha_s$:

| step | formula | what it does |
|---|---|---|
| 1 | $\frac{\sigma_t}{\sigma_s}x_s - \alpha_t\,(e^{-h} - 1)\,\hat x_0 = \frac{\sigma_t}{\sigma_s}x_s + \alpha_t\hat x_0 - \frac{\sigma_t\,\alpha_s}{\sigma_s}\,\hat x_0$ | expand $e^{-h}$ |
| 2 | $= \alpha_t\,\hat x_0 + \sigma_t\,\dfrac{x_s - \alpha_s\hat x_0}{\sigma_s}$ | collect the $\sigma_t / \sigma_s$ terms |
| 3 | $= \sqrt{\bar\alpha_t}\,\hat x_0 + \sqrt{1 - \bar\alpha_t}\;\epsilon_\theta$ | the fraction is $\epsilon_\theta$ (definition of $\hat x_0$): DDIM's eq. (12) with $\sigma_t = 0$, stepping from $s$ to $t$ |

The package's math layer registers it as identity 13-dpm-solver-pp-1-is-ddim (docs/math.md); the machine check, and
the numbers: DPM-Solver++ with \`solver_order: 1\` against DDIM from the same $x_T$ with the same timesteps. diffusers
spaces "leading" timesteps differently for the two classes (printed below), so both get \`timestep_spacing: "trailing"\`,
which they share.
`);

code(String.raw`
const dpm = allIdentities().find(({ identity }) => identity.id === "13-dpm-solver-pp-1-is-ddim")!.identity;
const dpmProof = proveIdentity(dpm.lhs, dpm.rhs, { positive: dpm.positive });
console.log(\`\${dpm.statement}\nproved: \${dpmProof.proved} (\${dpmProof.steps.length} steps)\`);
const leading = ["DDIMScheduler", "DPMSolverMultistepScheduler"].map((className) => {
  const scheduler = schedulerFor(learnedModel, className, { timestep_spacing: "leading" });
  scheduler.setTimesteps(5);
  return \`\${className} \${scheduler.timesteps.join(", ")}\`;
});
console.log(\`"leading" timesteps for S = 5: \${leading.join("; ")}\`);
const sameTimesteps = { timestep_spacing: "trailing" };
for (const [name, model] of [["exact", exactModel], ["learned", learnedModel]] as const) {
  const xT = new TorchGenerator(SEED).randn([4, 3, 32, 32]);
  const ddimScheduler = schedulerFor(model, "DDIMScheduler", { ...sameTimesteps, clip_sample: false });
  const ddim = await solve(model, ddimScheduler, xT, EQUAL_STEPS);
  const dpmScheduler = schedulerFor(model, "DPMSolverMultistepScheduler", { ...sameTimesteps, solver_order: 1 });
  const first = await solve(model, dpmScheduler, xT, EQUAL_STEPS);
  console.log(
    \`\${name} model, \${EQUAL_STEPS} steps: largest |x_0(DDIM) - x_0(DPM-Solver++, order 1)| = \` +
      \`\${largestDifference(ddim, first).toExponential(1)} (largest |x_0| = \${largest(ddim).toFixed(2)})\`,
  );
}
`);

md(String.raw`
Agreement to float32 rounding again (the differences printed above, a few units of the last float32 digit of values up to 2.06 and 8.71). With one stored output,
DPM-Solver++ is DDIM; everything it gains comes from the multistep corrections, which the next section measures.
`);

md(String.raw`
## Global error against the exact solution

\`builtin:gaussian32\` is one Gaussian, $\mathcal N(\mu, \Sigma)$, and its exact noise prediction is linear in $x$, so
the ODE (14) is linear and \`probabilityFlowSolution\` solves it in closed form:
$\bar x(\sigma) - \mu = (\Sigma + \sigma^2 I)^{1/2}(\Sigma + \sigma_T^2 I)^{-1/2}(\bar x_T - \mu)$. Every sampler below starts
from the same $x_T$ at $t = 999$ (\`timestep_spacing: "trailing"\`), ends at $\bar\alpha = 1$ ($\sigma = 0$), and its
global error is the RMS distance of its $x_0$ from the exact one; the model is exact, so this is the sampler's error
alone. The horizontal axis counts model evaluations (NFE), the cost that matters: $S$ for DDIM, Euler and DPM-Solver++,
$S + 1$ for PNDM, $2S - 1$ for Heun.

bench/solvers.ts measures the same kind of error (\`bun bench/solvers.ts\`) with four differences: it starts Euler and
Heun where diffusers' pipelines do, at $\sigma_{\max} z$ (\`initNoiseSigma\`), and takes that start's
variance-preserving $x_T$ with \`scaleModelInput\` (here all samplers start from one $x_T$, so one exact solution serves
them all); it stops every sampler but Heun at $\bar\alpha_0$ instead of $\bar\alpha = 1$, leaving out the last step to
$\sigma = 0$; it gives PNDM the leading spacing that its step of $\lfloor T/S \rfloor$ assumes; and it adds a well-conditioned 2-D Gaussian. This notebook keeps the whole path to $\sigma = 0$, which is
what a sampler run returns, and looks at that last stretch below.
`);

code(String.raw`
const SAMPLERS = [
  { name: "DDIM (eta = 0)", className: "DDIMScheduler", changes: { set_alpha_to_one: true } },
  { name: "Euler", className: "EulerDiscreteScheduler", changes: {} },
  { name: "Heun", className: "HeunDiscreteScheduler", changes: {} },
  { name: "PNDM (PLMS)", className: "PNDMScheduler", changes: { skip_prk_steps: true, set_alpha_to_one: true } },
  { name: "DPM-Solver++ 2M", className: "DPMSolverMultistepScheduler", changes: { solver_order: 2 } },
  { name: "DPM-Solver++ 3M", className: "DPMSolverMultistepScheduler", changes: { solver_order: 3 } },
];
/** The S whose schedule spends exactly \`nfe\` evaluations (S, S + 1 or 2S - 1 of them), or the largest below. */
function stepsFor(scheduler: AnyScheduler, nfe: number): number {
  let steps = 1;
  for (let s = 1; s <= nfe; s++) {
    scheduler.setTimesteps(s);
    if (scheduler.timesteps.length <= nfe) steps = s;
  }
  return steps;
}

const mixture = builtinMixture(EXACT_MODEL);
const xT = new TorchGenerator(SEED).randn([SAMPLES, 3, 32, 32]);
const trailing = { timestep_spacing: "trailing", clip_sample: false };
const alphaBarT = exactModel.scheduler.alphasCumprod[999];
const exactX0 = probabilityFlowSolution(mixture, xT, { alphaBarT, alphaBarS: 1 });
const rms = (a: Tensor, b: Tensor) => Math.sqrt(a.data.reduce((s, v, k) => s + (v - b.data[k]) ** 2, 0) / a.size);
const globalError: Record<string, number[]> = {};
const started = performance.now();
for (const { name, className, changes } of SAMPLERS) {
  const scheduler = schedulerFor(exactModel, className, { ...trailing, ...changes });
  globalError[name] = [];
  for (const nfe of NFE_GRID) {
    const steps = stepsFor(scheduler, nfe);
    scheduler.setTimesteps(steps);
    if (scheduler.timesteps.length !== nfe) throw new Error(\`\${name} spends \${scheduler.timesteps.length}, not \${nfe}\`);
    globalError[name].push(rms(await solve(exactModel, scheduler, xT), exactX0));
  }
}
console.log(\`\${SAMPLERS.length} samplers x \${NFE_GRID.length} budgets in \${((performance.now() - started) / 1000).toFixed(1)} s\`);
await showTable(NFE_GRID.map((nfe, k) => ({
  NFE: nfe,
  ...Object.fromEntries(SAMPLERS.map(({ name }) => [name, globalError[name][k].toExponential(2)])),
})));
`);

md(String.raw`
The fitted order is minus the slope of $\log(\text{error})$ against $\log(\text{NFE})$, by least squares over the budgets
from \`FIT_FROM\` up; the local slopes between neighbouring budgets show where each sampler is heading. The two lines
labelled "slope -1" and "slope -2" are references, not samplers: they pass through DDIM's error at \`FIT_FROM\`
evaluations with slopes $-1$ and $-2$.
`);

code(String.raw`
const tail = NFE_GRID.map((nfe, k) => [nfe, k] as const).filter(([nfe]) => nfe >= FIT_FROM);
const orders: Record<string, number> = {};
for (const { name } of SAMPLERS) {
  const fit = fitConvergenceOrder(tail.map(([nfe]) => nfe), tail.map(([, k]) => globalError[name][k]));
  orders[name] = fit.order;
  const local = NFE_GRID.slice(1).map((nfe, k) =>
    (-Math.log(globalError[name][k + 1] / globalError[name][k]) / Math.log(nfe / NFE_GRID[k])).toFixed(2)
  );
  console.log(\`\${name}: order \${fit.order.toFixed(2)} (R^2 \${fit.rSquared.toFixed(3)}); local slopes \${local.join(", ")}\`);
}
const anchor = globalError["DDIM (eta = 0)"][NFE_GRID.indexOf(FIT_FROM)];
await show(plotCurves({
  ...globalError,
  "slope -1": NFE_GRID.map((nfe) => anchor * (FIT_FROM / nfe)),
  "slope -2": NFE_GRID.map((nfe) => anchor * (FIT_FROM / nfe) ** 2),
}, {
  x: NFE_GRID,
  xType: "log",
  yType: "log",
  dots: true,
  xLabel: "model evaluations (NFE)",
  yLabel: "RMS error of x_0 against the exact ODE solution",
  title: \`Global error on \${EXACT_MODEL}, \${SAMPLES} starting points\`,
  marginLeft: 64,
  height: 380,
}));
`);

md(String.raw`
DDIM and Euler have the same error at every budget (their columns agree in every printed digit), and their fitted
order is 0.92, with local slopes rising 0.46, 0.57, 0.81, 0.89, 0.92, 0.93: first order, reached slowly (notebook 6
measures DDIM's order alone). The higher-order samplers do not show their textbook orders here:

- Heun is the least accurate at 5 evaluations ($S = 3$ steps) and passes DDIM only at 199 (6.78e-3 against 7.62e-3);
  its fitted order is 1.28, not 2.
- PNDM is the most accurate up to 19 evaluations (2.38e-2 against DDIM's 5.89e-2), then its error rises again at 49
  (4.06e-2, a local slope of -0.56) and from there falls at first order (0.96), behind DDIM.
- DPM-Solver++ is the most accurate from 49 evaluations on (2M 1.98e-2 and 3M 1.86e-2 at 49, against DDIM's
  2.72e-2). 2M reaches 5.65e-4 at 499, almost six times below DDIM's 3.23e-3; its fitted order is 1.55, its local
  slopes climb to 1.73 and drop to 1.37 at the end. Beyond 49 evaluations 3M does no better than 2M (order 1.27,
  9.71e-4 at 499).

Orders 2 and 4 are promises for a smooth right-hand side and steps of comparable size. These timesteps are uniform in
$t$, not in $\sigma$: near $t = 0$, $\sigma_t^2 \approx 1 - \bar\alpha_t \approx \sum_{s \le t} \beta_s$ grows about
in proportion to $t + 1$ (the betas start at $10^{-4}$ and change little there), so $\sigma_t$ grows like
$\sqrt{t + 1}$, steepest at $t = 0$, and the last interval, from $\sigma_{t_1}$ down to $0$, is the
roughest stretch of the path. Heun takes it with a plain Euler step (its corrector would need the network at
$\sigma = 0$), DPM-Solver++ takes it at first order too (diffusers' last step to $\sigma = 0$), and PLMS extrapolates
$\epsilon$ along $t$, in which the path is not smooth at $t = 0$. A test of that reading: DDIM, Heun and
DPM-Solver++ with timesteps that crowd towards $t = 0$, $t_j = \mathrm{round}(999\,(j / S)^2)$, given to
\`setTimesteps\` as a list (\`PNDMScheduler\` takes no list, so PLMS stays out of the test).
`);

code(String.raw`
/** S timesteps from 999 down, quadratic in the step index: packed towards t = 0, where sigma_t changes fastest. */
const quadratic = (steps: number) => Array.from({ length: steps }, (_, j) => Math.round(999 * ((steps - j) / steps) ** 2));
console.log(\`quadratic timesteps for S = 5: \${quadratic(5).join(", ")}\`);
const config = { ...exactModel.scheduler.toConfig(), clip_sample: false };
for (const [name, scheduler] of [
  ["DDIM (eta = 0)", DDIMScheduler.fromConfig({ ...config, set_alpha_to_one: true })],
  ["Heun", HeunDiscreteScheduler.fromConfig(config)],
  ["DPM-Solver++ 2M", DPMSolverMultistepScheduler.fromConfig({ ...config, solver_order: 2 })],
  ["DPM-Solver++ 3M", DPMSolverMultistepScheduler.fromConfig({ ...config, solver_order: 3 })],
] as const) {
  const nfe: number[] = [];
  const errors: number[] = [];
  for (const steps of DENSE_STEPS) {
    scheduler.setTimesteps(quadratic(steps));
    errors.push(rms(await solve(exactModel, scheduler, xT), exactX0));
    nfe.push(scheduler.timesteps.length);
  }
  const local = errors.slice(1).map((e, k) => (-Math.log(e / errors[k]) / Math.log(nfe[k + 1] / nfe[k])).toFixed(2));
  console.log(
    \`\${name}, NFE \${nfe.join(", ")}: RMS error \${errors.map((e) => e.toExponential(2)).join(", ")}; \` +
      \`local slopes \${local.join(", ")}\`,
  );
}
`);

md(String.raw`
With the steps packed towards $t = 0$ the second-order samplers show their order: Heun's local slopes are 2.99, 2.34,
2.14, and at 79 evaluations its error, 2.77e-3, is near what the uniform schedule reached with 499 (2.08e-3);
DPM-Solver++ 2M's are 1.88, 2.24, 2.31, with 7.69e-4 at 40 evaluations, close to its uniform-schedule error at 499
(5.65e-4). DDIM stays first order (local slopes 0.81, 0.92, 0.95) but gains too: 1.69e-2 at 40 evaluations against
2.72e-2 at 49 on the uniform schedule. 3M climbs faster (2.18, 2.80) and then stalls (1.30; 8.07e-4 at 40, no better
than 2M); this notebook does not pin down why. Where the steps go matters as much as which solver takes them.
`);

md(String.raw`
## Table 1 on the learned model

The paper's Table 1 compares samplers by sample quality at a fixed number of steps. On \`builtin:ddpm-shapes32\` the
data law is known exactly, so quality is measured exactly: the mean log-likelihood per dimension of the samples under
the data law, minus that of exact draws from the law (0 = as likely as real data; below 0 = less likely; the figure's
bars are one standard error). Each sampler is made with \`schedulerFromConfig\` from the checkpoint's own scheduler
config, as a diffusers user swaps schedulers (\`pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)\`),
and runs through \`runSampling\`, which scales $x_T$ by \`initNoiseSigma\` as diffusers' pipelines do. Heun spends
$2S - 1$ evaluations, so it gets 5, 9 and 19.

One difference is not the solver's: the checkpoint's config sets \`clip_sample: true\`. DDIM and Heun have that
option and apply it (DDIM clamps $\hat x_0$ to $[-1, 1]$ before its step; Heun clamps its denoised $D$ and takes the
slope $(\bar x - D) / \sigma$ from the clamped value), while PNDM, Euler and DPM-Solver++ have no such option and never
clip (DPM-Solver++ has diffusers' dynamic \`thresholding\` instead, off by default). The rows "clip_sample off" run
DDIM and Heun without it, to separate clipping from the solver. The same comparison, with more samples, is
bench/solvers.ts (\`bun bench/solvers.ts\`).
`);

code(String.raw`
const QUALITY_SAMPLERS = [
  ...SAMPLERS,
  {
    name: "DDIM (eta = 0), clip_sample off",
    className: "DDIMScheduler",
    changes: { set_alpha_to_one: true, clip_sample: false },
  },
  { name: "Heun, clip_sample off", className: "HeunDiscreteScheduler", changes: { clip_sample: false } },
];
const law = builtinMixture(LEARNED_MODEL);
const flat = (x: Tensor) => x.reshape([x.shape[0], x.size / x.shape[0]]);
const exactDraws = meanLogLikelihood(
  flat(law.sample(QUALITY_SAMPLES, new TorchGenerator(EXACT_DRAWS_SEED)).samples),
  (x) => law.logDensity(x),
);
const noise = new TorchGenerator(QUALITY_SEED).randn([QUALITY_SAMPLES, 3, 32, 32]);
const quality: { sampler: string; budget: number; NFE: number; gap: number; error: number; samples: Tensor }[] = [];
const qualityStarted = performance.now();
for (const { name, className, changes } of QUALITY_SAMPLERS) {
  const scheduler = schedulerFor(learnedModel, className, changes);
  for (const budget of QUALITY_NFE) {
    const steps = stepsFor(scheduler, budget);
    const { samples, timesteps } = await runSampling(learnedModel.unet, scheduler, {
      xT: noise,
      numInferenceSteps: steps,
      defaultSteps: steps,
      label: name,
      stepOptions: () => ({}),
    });
    const likelihood = meanLogLikelihood(flat(samples), (x) => law.logDensity(x));
    quality.push({
      sampler: name,
      budget,
      NFE: timesteps.length,
      gap: likelihood.perDimension - exactDraws.perDimension,
      error: Math.hypot(likelihood.standardError, exactDraws.standardError) / exactDraws.dimensions,
      samples,
    });
  }
}
console.log(
  \`\${quality.length} runs of \${QUALITY_SAMPLES} samples in \${((performance.now() - qualityStarted) / 1000).toFixed(1)} s\`,
);
const outside = (x: Tensor) => x.data.reduce((n, v) => n + (Math.abs(v) > 1 ? 1 : 0), 0) / x.size;
await showTable(quality.map((row) => ({
  sampler: row.sampler,
  NFE: row.NFE,
  "log-likelihood gap per dim": \`\${row.gap.toFixed(2)} ± \${row.error.toFixed(2)}\`,
  "pixels outside [-1, 1]": \`\${(100 * outside(row.samples)).toFixed(1)}%\`,
  "largest |x_0|": row.samples.data.reduce((m, v) => Math.max(m, Math.abs(v)), 0).toFixed(2),
})));
const gapOf = (name: string) => quality.filter((r) => r.sampler === name);
await show(plotCurves(
  Object.fromEntries(QUALITY_SAMPLERS.map(({ name }) => [name, gapOf(name).map((r) => r.gap)])),
  {
    x: QUALITY_NFE,
    errors: Object.fromEntries(QUALITY_SAMPLERS.map(({ name }) => [name, gapOf(name).map((r) => r.error)])),
    rules: { "exact draws (gap 0)": 0 },
    dots: true,
    xLabel: "model evaluations allowed (Heun spends 5, 9, 19)",
    yLabel: "log-likelihood gap per dimension",
    title: \`Table 1 metric on \${LEARNED_MODEL}, \${QUALITY_SAMPLES} samples\`,
    marginLeft: 56,
    height: 380,
  },
));
`);

md(String.raw`
What the samples look like at the largest budget (first six samples of each run; the picture clamps values to
$[-1, 1]$, so values outside that range show as saturated colour):
`);

code(String.raw`
const last = QUALITY_NFE.at(-1)!;
const rows = QUALITY_SAMPLERS.map(({ name }) => quality.find((r) => r.sampler === name && r.budget === last)!);
await show(encodePng(imageGrid(rows.map((r) => r.samples.splitBatch().slice(0, 6)), {
  rowTitles: rows.map((r) => \`\${r.sampler}, NFE \${r.NFE}\`),
  scale: 2,
})));
`);

md(String.raw`
What the numbers show (every row starts from the same $x_T$; the bars of the unclipped rows are wide, so read the
pixel columns beside them):

- Euler and "DDIM (eta = 0), clip_sample off" agree in every printed digit, as the first section says they must.
- Without clipping, more evaluations make the samples of Euler, PNDM and DPM-Solver++ **worse** (PNDM: no better
  from 5 to 10), and the share of pixels outside the data range $[-1, 1]$ grows with them. Euler: -3.37, -10.25,
  -20.18 at 5, 10 and 20 evaluations, with 8.9%, 33.8%, 48.3% of the pixels outside and a largest $|x_0|$ of 5.44. PNDM: -9.12, -9.18, -15.02. DPM-Solver++ 2M: -3.88, -9.55, -16.03,
  and 3M within a few tenths of it. A more accurate solution of this network's ODE lands further from the data law:
  the trained network's ODE is not the data law's ODE, and no solver can repair that. Heun without clipping improves
  from 5 to 19 evaluations (-49.27, -17.69, -12.94) but stays far from the data too (31.9% of pixels outside at 19).
- Clipping is what makes this checkpoint's samples good. The two samplers that clip never leave $[-1, 1]$ and improve
  with every budget: DDIM -1.96, -1.52, -1.16 and Heun -36.29, -14.02, -5.77. They clip differently (DDIM keeps the
  network's $\epsilon$ beside the clamped $\hat x_0$, Heun takes its slope from the clamped $D$), so even these two rows
  are not a pure comparison of orders.
- At 5, 10 and 20 evaluations none of the higher-order samplers beats clipped DDIM on this checkpoint. The global-error
  study shows what order buys when the network is exact; on a small trained network whose error is large at high
  noise (notebook 7), what decides is whether $\hat x_0$ is kept in the data range: the Table 1 analogue ranks
  clipping first and solver order second.
`);

md(String.raw`
## Recap

- With $\eta = 0$, DDIM's update is, by exact algebra, Euler's method on the ODE (14) in $\bar x = x / \sqrt{\bar\alpha}$
  and $\sigma = \sqrt{(1 - \bar\alpha) / \bar\alpha}$; diffusers' \`EulerDiscreteScheduler\` is the same method, and started
  from the same point it gives DDIM's numbers to float32 rounding.
- Higher-order samplers reuse the same network: Heun (two evaluations a step), PNDM (Adams–Bashforth on $\epsilon$),
  DPM-Solver++ (exact on the linear part, multistep on $\hat x_0$).
- First-order DPM-Solver++ is DDIM as well (identity 13-dpm-solver-pp-1-is-ddim, and the same numbers).
- On the exact model DDIM and Euler are first order (0.92). On timesteps uniform in $t$ the higher-order samplers fall
  short of their orders (Heun 1.28, PLMS 0.96, DPM-Solver++ 2M 1.55, 3M 1.27), though DPM-Solver++ is the most
  accurate from 49 evaluations on; with timesteps packed towards $t = 0$, Heun and DPM-Solver++ 2M show second order.
- On the learned model the Table 1 metric is decided by clipping: without it, Euler, PNDM and DPM-Solver++ get worse
  with more evaluations and Heun stays far from the data; with it, DDIM at 5 to 20 evaluations is the best sampler
  here.
`);

md(String.raw`
## Exercises

1. Change the exponent of the packed timesteps from 2 to 3 (or $3/2$): how do DDIM's and Heun's errors at 40 and 79
   evaluations move, and their local slopes?
2. Turn \`clip_sample\` on for DDIM in the global-error study (the exact model): at which budgets does clipping change
   the error, and why only there?
3. Raise \`QUALITY_NFE\` to \`[50, 100]\` for Euler alone: towards which gap does the solution of the learned model's own
   ODE tend, and how does it compare with clipped DDIM at 20 evaluations?
`);

await notebook.write();
