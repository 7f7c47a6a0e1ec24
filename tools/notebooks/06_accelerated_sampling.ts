/**
 * Writes notebooks/06_accelerated_sampling.ipynb, unexecuted: `deno run -A tools/notebooks/06_accelerated_sampling.ts`,
 * then `notebooks/run.sh notebooks/06_accelerated_sampling.ipynb` executes it in place.
 *
 * Cells are written with String.raw so LaTeX keeps its backslashes; inside them "\`" stands for a backtick and
 * "\${" for a template placeholder of the notebook's own code.
 *
 * @module
 */

import { notebookWriter } from "./_notebook.ts";

const notebook = notebookWriter("06_accelerated_sampling");
const { md, code } = notebook;

md(String.raw`
# 6. Accelerated sampling

Previous: [5. Determinism and consistency](05_determinism.ipynb) · Next: [7. $\eta = 1$ against DDPM](07_eta1_vs_ddpm.ipynb)

DDIM's training objective involves only the marginals $q(x_t \mid x_0)$, so the generative process may skip timesteps
(the paper's section 4.2): pick an increasing sub-sequence $\tau_1 < \dots < \tau_S$ of the $T = 1000$ training timesteps
and step from $\tau_i$ straight to $\tau_{i-1}$,

$$x_{\tau_{i-1}} = \sqrt{\bar\alpha_{\tau_{i-1}}}\,\hat x_0(x_{\tau_i}) + \sqrt{1 - \bar\alpha_{\tau_{i-1}} - \sigma_{\tau_i}^2}\;
\epsilon_\theta(x_{\tau_i}, \tau_i) + \sigma_{\tau_i} z .$$

$S$ network calls instead of $T$: ten steps are a hundred times faster. The paper's headline (its Table 1) is that
deterministic DDIM ($\eta = 0$) at $S = 50$ comes close to its quality at $S = 1000$ (FID 4.67 against 4.04 on CIFAR-10,
paper, Table 1), and that at small $S$ it is far better than the DDPM-like samplers, which need many more steps. This notebook shows it, and where it does not hold, on a trained network:

| part | model | why this model |
|---|---|---|
| DDIM at $S = 10$ and $50$ against DDPM at $1000$, side by side | \`builtin:ddpm-shapes32\` (trained) | few-step quality is about how a sampler copes with a network's errors |
| the $\eta \times S$ grid, the Table 1 analogue | \`builtin:ddpm-shapes32\` | the same; its data law is known, so quality is measured exactly |
| which timesteps to visit | \`builtin:ddpm-shapes32\` | the spacing matters most at few steps |
| convergence order | \`builtin:gaussian32\` (exact) | its ODE has a closed-form solution, so the sampler's error alone is measured |
`);

code(String.raw`
import {
  builtinMixture,
  configOf,
  DDIMPipeline,
  DDIMScheduler,
  DDPMPipeline,
  DDPMScheduler,
  encodePng,
  fitConvergenceOrder,
  fromPretrained,
  gaussian32OdeSolution,
  imageGrid,
  meanLogLikelihood,
  plotCurves,
  plotTimesteps,
  show,
  showTable,
  spacedTimesteps,
  Tensor,
  TIMESTEP_SPACINGS,
  TorchGenerator,
} from "../mod.ts";
`);

md(String.raw`
**Parameters.** Change one and rerun the notebook.

**Use a real checkpoint.** \`MODEL\` can be any diffusers checkpoint folder (docs/checkpoints.md), for example
\`"../checkpoints/ddpm-cifar10-32"\`; the exact draws and likelihood scores need a builtin model whose law is known and are
skipped otherwise. DDPM's 1000 steps take about an hour per image at 256 x 256 on a 2-core CPU.
`);

code(String.raw`
const MODEL = "builtin:ddpm-shapes32"; // the trained network; "builtin:shapes32" is the exact model of the same law
const SEED = 0; // seed of x_T in the side-by-side figure
const BATCH = 4; // images per sampler in that figure
const FEW_STEPS = [50, 10]; // DDIM step counts set against DDPM's 1000
const GRID_ETAS = [0, 0.5, 1];
const GRID_STEPS = [10, 20, 50];
const GRID_BATCH = 2; // images per cell of the eta x S grid
const SPACING_BATCH = 8; // images per spacing in the timestep-spacing comparison
const ORDER_MODEL = "builtin:gaussian32"; // the exact model whose ODE solution is known in closed form
const ORDER_STEPS = [5, 10, 20, 50, 100, 200];
const RESULT = "../docs/learned-models/result.json"; // written by \`bun bench/learned.ts\`
`);

md(String.raw`
## The headline, shown: DDIM at $S = 10$ and $50$ against DDPM at $1000$

The same network, the same starting noise $x_T$ for every row. Each sampler uses the checkpoint's scheduler config:
linear betas, \`clip_sample\` on, DDPM's variance \`fixed_small\` ($\sigma_t^2 = \tilde\beta_t$, the $\eta = 1$ value).
The fourth row is DDPM at $10$ steps with the larger variance \`fixed_large\` ($\sigma_t^2 = 1 - \bar\alpha_{\tau_i} /
\bar\alpha_{\tau_{i-1}}$), the paper's $\hat\sigma$ row, which is how DDPM is usually run with few steps. The last row
is exact draws of the law the network was trained on.
`);

code(String.raw`
const { unet, scheduler } = await fromPretrained(MODEL);
const ddim = new DDIMPipeline({ unet, scheduler });
const ddpm = new DDPMPipeline({ unet, scheduler });
const ddpmLarge = new DDPMPipeline({
  unet,
  scheduler: DDPMScheduler.fromConfig({ ...configOf(ddpm.scheduler), variance_type: "fixed_large" }),
});
const [channels, size] = [unet.inChannels, unet.sampleSize as number];
const xT = new TorchGenerator(SEED).randn([BATCH, channels, size, size]);
const rows: { name: string; samples: Tensor; calls: number; seconds: number }[] = [];
async function timed(name: string, calls: number, run: () => Promise<{ samples: Tensor }>) {
  const started = performance.now();
  const { samples } = await run();
  rows.push({ name, samples, calls, seconds: (performance.now() - started) / 1000 });
}
await timed("DDPM, 1000 steps", 1000, () => ddpm.sample({ xT, seed: SEED, numInferenceSteps: 1000 }));
for (const steps of FEW_STEPS) {
  await timed(\`DDIM eta = 0, \${steps} steps\`, steps, () => ddim.sample({ xT, eta: 0, numInferenceSteps: steps }));
}
await timed("DDPM fixed_large, 10 steps", 10, () => ddpmLarge.sample({ xT, seed: SEED, numInferenceSteps: 10 }));
const known = MODEL.startsWith("builtin:");
const exact = known ? builtinMixture(MODEL).sample(BATCH, new TorchGenerator(SEED + 11)).samples : null;
await show(encodePng(imageGrid(
  [...rows.map((r) => r.samples.splitBatch()), ...(exact ? [exact.reshape(xT.shape).splitBatch()] : [])],
  { rowTitles: [...rows.map((r) => r.name), ...(exact ? ["exact draws"] : [])], scale: 2 },
)));
await showTable(rows.map((r) => ({
  sampler: r.name,
  "network calls per image": r.calls,
  seconds: Number(r.seconds.toFixed(1)),
  "speed-up over DDPM 1000": Number((rows[0].seconds / r.seconds).toFixed(1)),
})));
`);

md(String.raw`
DDIM at $50$ and at $10$ steps draws clean, recognisable shapes at a fiftieth and a hundredth of DDPM's network calls
(the timings in the table are wall-clock and vary with the machine's load). DDPM with $10$ steps and its large variance
does not: the noise it adds at each coarse step is never removed, and its images are grainy. DDPM at $1000$ steps draws
other shapes than DDIM from the same $x_T$, because it adds fresh noise at every step, so $x_T$ does not fix its image
(notebook 5). By eye, DDPM's images are closer to the exact draws (dark backgrounds, saturated colours) than DDIM's,
whose backgrounds are lighter and greyer. Whether ten DDIM steps are "as good as" a thousand DDPM steps therefore needs
a measurement, not an impression; the next section gives it.

## The $\eta \times S$ grid and the Table 1 analogue

A small grid of samples, every cell from the same $x_T$ (\`GRID_BATCH\` images per cell, too few to score):
`);

code(String.raw`
const gridXT = new TorchGenerator(SEED + 1).randn([GRID_BATCH, channels, size, size]);
const grid = GRID_ETAS.map((eta) => []) as Tensor[][];
for (const [row, eta] of GRID_ETAS.entries()) {
  for (const steps of GRID_STEPS) {
    grid[row].push(...(await ddim.sample({ xT: gridXT, eta, seed: SEED + 3, numInferenceSteps: steps })).samples
      .splitBatch());
  }
}
await show(encodePng(imageGrid(grid, {
  rowTitles: GRID_ETAS.map((eta) => \`eta = \${eta}\`),
  colTitles: GRID_STEPS.flatMap((s) => Array.from({ length: GRID_BATCH }, (_, k) => (k === 0 ? \`S = \${s}\` : ""))),
  scale: 2,
})));
`);

md(String.raw`
Scoring needs many samples per cell, more than a notebook can afford, so the scores come from the benchmark beside
this notebook: \`bun bench/learned.ts\` (about ten minutes on two cores) samples 64 images per cell from one shared $x_T$
and writes docs/learned-models/result.json, which the next cell loads and prints. The score is the **log-likelihood gap**:
the mean log-density per dimension of the samples under the exact law, minus that of exact draws. A gap of $0$ means as
likely as real data; a negative gap means left-over noise or artefacts. The paper scores CIFAR-10 with FID, which needs
a trained Inception network; here the true law is known.
`);

code(String.raw`
const result = JSON.parse(await Deno.readTextFile(RESULT));
const quality = result.quality;
const variants: string[] = [...new Set<string>(quality.rows.map((r: { variant: string }) => r.variant))];
const cell = (variant: string, steps: number) =>
  quality.rows.find((r: { variant: string; steps: number }) => r.variant === variant && r.steps === steps);
const fmt = (r: { logLikelihoodGap: number; logLikelihoodGapError: number } | undefined) =>
  r ? \`\${r.logLikelihoodGap.toFixed(2)} ± \${r.logLikelihoodGapError.toFixed(2)}\` : "-";
console.log(
  \`\${result.model}: \${quality.samples} samples per cell, x_T seed \${quality.seed}; exact draws score \` +
    \`\${quality.floor.exactLogLikelihoodPerDim.toFixed(3)} nats per dimension\`,
);
await showTable(variants.map((variant) => ({
  "log-likelihood gap (nats/dim)": variant,
  ...Object.fromEntries(quality.steps.map((s: number) => [\`S = \${s}\`, fmt(cell(variant, s))])),
})));
await showTable(quality.paper.rows.map((r: { variant: string; fid: number[] }) => ({
  "paper, Table 1 (CIFAR-10 FID)": r.variant,
  ...Object.fromEntries(quality.steps.map((s: number, k: number) => [\`S = \${s}\`, r.fid[k]])),
})));
const etaRows = variants.filter((v) => v.startsWith("eta"));
const common = quality.steps.filter((s: number) => etaRows.every((v) => cell(v, s) !== undefined));
await show(plotCurves(
  Object.fromEntries(etaRows.map((v) => [v, common.map((s: number) => cell(v, s).logLikelihoodGap)])),
  {
    x: common,
    xType: "log",
    dots: true,
    errors: Object.fromEntries(etaRows.map((v) => [v, common.map((s: number) => cell(v, s).logLikelihoodGapError)])),
    rules: { "exact draws (gap 0)": 0 },
    marginLeft: 45,
    xLabel: "steps S",
    yLabel: "log-likelihood gap to exact draws (nats per dimension)",
    title: \`\${result.model}: Table 1 analogue, ± one standard error (\${quality.samples} samples per cell)\`,
  },
));
`);

md(String.raw`
How the paper's headline reads on this network (each number from the table above, gap ± one standard error):

- **Against DDPM as the paper runs it with few steps** (its $\hat\sigma$ row, diffusers' \`fixed_large\`), the headline
  holds: DDIM ($\eta = 0$) at $S = 10$ scores -1.44 ± 0.12, while $\hat\sigma$ scores -16.94 ± 0.27 at $S = 10$ and
  needs $S = 1000$ to reach -1.50 ± 0.13. Ten DDIM steps are as close to the data as a thousand $\hat\sigma$ steps.
- **Against DDPM with \`fixed_small\`** (the checkpoint's own setting, which is $\eta = 1$, notebook 7) it does not:
  $\eta = 1$ is closer to the data than $\eta = 0$ at every $S$ (at $S = 20$ by less than the noise), and at $S = 1000$ it
  scores -0.90 ± 0.06, better than any $\eta = 0$ cell. The paper has $\eta = 0$ best for every $S$ up to $100$ (its Table 1, printed above).
- **$\eta = 0$ does not improve steadily with $S$** here: its best cell is $S = 20$ (-0.94 ± 0.08) and its worst
  $S = 1000$ (-4.48 ± 0.11).

The likely cause of the difference from the paper is the network, not the sampler. This network was trained for an
hour on two CPU cores, and its noise prediction has a clear error where $x_t$ is almost pure noise (docs/learned-models.md
measures it at every $t$). The deterministic sampler carries such an error all the way to $x_0$, while the fresh noise of
$\eta > 0$ partly washes it out. On the exact model of the same law, where the noise prediction makes no error, the
$\eta$ rows stay close together and $\eta = 0$ is the closest of them from $S = 50$ on (docs/benchmarks.md runs the same grid on
\`builtin:shapes32\`).
`);

md(String.raw`
## Which timesteps to visit

Which $S$ of the $1000$ timesteps to visit is a choice of its own. diffusers offers \`leading\` (the default,
$\tau_i = (i - 1)\lfloor T / S \rfloor$, so with $S = 10$ the first step is at $t = 900$, never $999$), \`trailing\`
(counted back from $t = 999$, recommended by Lin et al. 2023 for few steps) and \`linspace\` (evenly from $0$ to $999$,
rounded); the DDIM code also has \`quad\`, quadratically spaced ($\tau_i \propto i^2$), which visits small $t$ more often.
All four on one axis:
`);

code(String.raw`
await show(plotTimesteps(
  Object.fromEntries(TIMESTEP_SPACINGS.map((spacing) => [spacing, spacedTimesteps(spacing, 10)])),
  { numTrainTimesteps: 1000, title: "S = 10 of T = 1000 timesteps", xLabel: "timestep t" },
));
const alphaBar = scheduler.alphasCumprod;
console.log(
  \`alphaBar_900 = \${alphaBar[900].toExponential(2)} (sqrt: \${Math.sqrt(alphaBar[900]).toFixed(4)}); \` +
    \`alphaBar_999 = \${alphaBar[999].toExponential(2)} (sqrt: \${Math.sqrt(alphaBar[999]).toFixed(4)})\`,
);
`);

md(String.raw`
\`leading\` treats $x_T$, which is pure noise, as if it were $x_{900}$. The printed values say how wrong that is: a true
$x_{900}$ still holds $\sqrt{\bar\alpha_{900}}$ of the image, against $\sqrt{\bar\alpha_{999}}$ for $x_{999}$. Both are
tiny, so the mismatch is small, but it is why \`trailing\` is recommended for few steps. The same ten-step, $\eta = 0$ run
with each spacing, from the same $x_T$, scored by the log-likelihood gap (\`SPACING_BATCH\` images per row, so the standard
errors are large):
`);

code(String.raw`
const spacingXT = new TorchGenerator(SEED + 4).randn([SPACING_BATCH, channels, size, size]);
const logDensity = known ? (x: Tensor) => builtinMixture(MODEL).logDensity(x) : null;
const exactLevel = logDensity
  ? meanLogLikelihood(builtinMixture(MODEL).sample(64, new TorchGenerator(SEED + 2)).samples, logDensity).perDimension
  : NaN;
const spacingRows = [];
const spacingImages = [];
for (const spacing of TIMESTEP_SPACINGS) {
  const spaced = new DDIMPipeline({
    unet,
    scheduler: DDIMScheduler.fromConfig({ ...configOf(ddim.scheduler), timestep_spacing: spacing }),
  });
  const { samples, timesteps } = await spaced.sample({ xT: spacingXT, eta: 0, numInferenceSteps: 10 });
  spacingImages.push(samples.splitBatch().slice(0, 4));
  const score = logDensity ? meanLogLikelihood(samples, logDensity) : null;
  spacingRows.push({
    spacing,
    "first t": timesteps[0],
    "last t": timesteps.at(-1)!,
    "log-likelihood gap": score ? score.perDimension - exactLevel : "-",
    "± s.e.": score ? score.standardError / score.dimensions : "-",
  });
}
await show(encodePng(imageGrid(spacingImages, { rowTitles: [...TIMESTEP_SPACINGS], scale: 2 })));
await showTable(spacingRows);
if (logDensity) {
  // the largest difference between two spacings, in combined standard errors
  const scored = spacingRows as { spacing: string; "log-likelihood gap": number; "± s.e.": number }[];
  const pairs = scored.flatMap((a, j) => scored.slice(j + 1).map((b) => [a, b] as const));
  const [a, b] = pairs.reduce((best, pair) =>
    Math.abs(pair[0]["log-likelihood gap"] - pair[1]["log-likelihood gap"]) >
        Math.abs(best[0]["log-likelihood gap"] - best[1]["log-likelihood gap"])
      ? pair
      : best
  );
  const difference = Math.abs(a["log-likelihood gap"] - b["log-likelihood gap"]);
  const combined = Math.hypot(a["± s.e."], b["± s.e."]);
  console.log(
    \`largest difference: \${a.spacing} against \${b.spacing}, \${difference.toFixed(2)} nats per dimension, \` +
      \`\${(difference / combined).toFixed(1)} combined standard errors\`,
  );
}
`);

md(String.raw`
With \`SPACING_BATCH\` images per row the spacings are hard to tell apart: the printed largest difference is about two
combined standard errors, at the edge of what sampling noise alone produces among six pairs. What the table does show
without noise is where each spacing starts and ends: \`trailing\` starts at $t = 999$ but stops at $t = 99$ and leaves
the rest to one final jump, \`leading\` never sees $t = 999$, and \`quad\` spends most of its steps near $t = 0$.

## Convergence order, on the exact model

At $\eta = 0$ the DDIM step is Euler's method for an ODE (the paper's eq. 14, in $\bar x = x / \sqrt{\bar\alpha}$ and
$\sigma = \sqrt{(1 - \bar\alpha) / \bar\alpha}$):

$$\mathrm d\bar x(\sigma) = \epsilon_\theta\!\Big(\frac{\bar x}{\sqrt{\sigma^2 + 1}}, \sigma\Big)\,\mathrm d\sigma .$$

Euler's method has order $1$: its global error at $x_0$ falls like $S^{-1}$. To measure that, the exact solution is
needed. \`builtin:gaussian32\` is one Gaussian fitted to the shapes images, so its ODE is linear and
\`gaussian32OdeSolution\` solves it in closed form; the error below is the sampler's and nothing else. The runs use
\`trailing\` spacing (every $S$ starts at $t = 999$ and ends at $\bar\alpha = 1$, so all solve one initial value problem)
and no clipping.

A reading trap: the **MSE** is a squared error. If the error falls like $S^{-p}$, the MSE falls like $S^{-2p}$, so on a
log-log plot the MSE's slope is $-2p$, twice the order. The cell fits both.
`);

code(String.raw`
const orderPipe = await DDIMPipeline.fromPretrained(ORDER_MODEL);
orderPipe.scheduler = DDIMScheduler.fromConfig({
  ...configOf(orderPipe.scheduler),
  timestep_spacing: "trailing",
  clip_sample: false,
  set_alpha_to_one: true,
});
const orderXT = new TorchGenerator(14).randn([8, 3, 32, 32]);
const rms: number[] = [];
for (const steps of ORDER_STEPS) {
  const run = await orderPipe.sample({ xT: orderXT, eta: 0, numInferenceSteps: steps });
  const solution = gaussian32OdeSolution(orderXT, { t: run.timesteps[0], s: -1 });
  let squared = 0;
  for (let k = 0; k < solution.size; k++) squared += (run.samples.data[k] - solution.data[k]) ** 2;
  rms.push(Math.sqrt(squared / solution.size));
}
const mse = rms.map((e) => e * e);
const tail = ORDER_STEPS.map((s, k) => [s, k] as const).filter(([s]) => s >= 50).map(([, k]) => k);
const fitOf = (errors: number[], keep: readonly number[]) =>
  fitConvergenceOrder(keep.map((k) => ORDER_STEPS[k]), keep.map((k) => errors[k]));
const all = ORDER_STEPS.map((_, k) => k);
await showTable([
  { "fitted on": "RMS error, all S", "slope of log error against log S": -fitOf(rms, all).order },
  { "fitted on": "RMS error, S >= 50", "slope of log error against log S": -fitOf(rms, tail).order },
  { "fitted on": "MSE, S >= 50", "slope of log error against log S": -fitOf(mse, tail).order },
]);
await show(plotCurves({ "RMS error": rms, "MSE": mse }, {
  x: ORDER_STEPS,
  xType: "log",
  yType: "log",
  dots: true,
  marginLeft: 60,
  xLabel: "steps S",
  yLabel: "error of x_0 against the exact ODE solution",
  title: \`\${ORDER_MODEL}: DDIM (eta = 0) against the exact solution\`,
}));
`);

md(String.raw`
Over $S \ge 50$ the RMS error falls with slope -0.9104, close to $-1$: DDIM at $\eta = 0$ is a first-order method, as
Euler's method should be. The MSE over the same $S$ falls with slope -1.821, twice as steep, because it is the square of
the error; reading the MSE's slope as the order would double it. Over all $S$ the slope is shallower (-0.7454): at a few
steps the first step jumps across most of the ODE's range, from $\sigma = \sqrt{(1 - \bar\alpha_{999}) / \bar\alpha_{999}}$
(the largest value of the schedule) to much smaller values, where the error is not yet proportional to the step size.

## Recap

- DDIM skips timesteps by stepping along a sub-sequence $\tau$; the network is the one trained for all $1000$.
- On the trained network, DDIM at $10$ and $50$ steps draws clean shapes at a hundredth and a fiftieth of DDPM's cost,
  and ten DDIM steps match a thousand steps of DDPM's large-variance sampler; DDPM with the small variance ($\eta = 1$)
  stays closer to the data on this network, which departs from the paper's ordering.
- The MSE's log-log slope is twice the order; DDIM at $\eta = 0$ is a first-order method.

## Exercises

1. Set \`MODEL = "builtin:shapes32"\` (the exact model of the same law) and rerun the first figure: which differences
   between DDPM at $1000$ and DDIM at $10$ steps remain when the network makes no error?
2. Set \`FEW_STEPS = [20, 5]\`: at which $S$ do the DDIM shapes start to break up?
3. Add \`"leading"\` spacing to the convergence runs (remove \`timestep_spacing: "trailing"\`): the runs then start at
   different $t$ for different $S$. What happens to the fitted order, and why?
`);

await notebook.write();
