/**
 * Writes notebooks/07_eta1_vs_ddpm.ipynb, unexecuted: `deno run -A tools/notebooks/07_eta1_vs_ddpm.ts`, then
 * `notebooks/run.sh notebooks/07_eta1_vs_ddpm.ipynb` executes it in place.
 *
 * Cells are written with String.raw so LaTeX keeps its backslashes; inside them "\`" stands for a backtick and
 * "\${" for a template placeholder of the notebook's own code.
 *
 * @module
 */

import { notebookWriter } from "./_notebook.ts";

const notebook = notebookWriter("07_eta1_vs_ddpm");
const { md, code } = notebook;

md(String.raw`
# 7. $\eta = 1$ against DDPM

Previous: [6. Accelerated sampling](06_accelerated_sampling.ipynb) · Next: [8. Inversion and reconstruction](08_inversion.ipynb)

Notebook 3 proves that with $\eta = 1$ the DDIM update is the DDPM update, for the same predicted noise and the same
fresh noise $z$. Here the identity is tested on whole sampling runs: the same model, the same seed (so the same $x_T$ and
the same $z$ at every step), DDIM at $\eta = 1$ against diffusers' DDPM sampler. The two steps, with
$\hat x_0 = (x_t - \sqrt{1 - \bar\alpha_t}\,\epsilon_\theta) / \sqrt{\bar\alpha_t}$ and $\alpha_t = \bar\alpha_t / \bar\alpha_{t-1}$:

| sampler | step $x_t \to x_{t-1}$ |
|---|---|
| DDPM (posterior mean, \`fixed_small\`) | $\dfrac{\sqrt{\bar\alpha_{t-1}}\,(1 - \alpha_t)}{1 - \bar\alpha_t}\,\hat x_0 + \dfrac{\sqrt{\alpha_t}\,(1 - \bar\alpha_{t-1})}{1 - \bar\alpha_t}\,x_t + \tilde\beta_t^{1/2} z$ |
| DDIM, eq. 12 | $\sqrt{\bar\alpha_{t-1}}\,\hat x_0 + \sqrt{1 - \bar\alpha_{t-1} - \sigma_t^2}\;\epsilon_\theta + \sigma_t z$ |

With $\eta = 1$, $\sigma_t^2 = \tilde\beta_t = \frac{1 - \bar\alpha_{t-1}}{1 - \bar\alpha_t}(1 - \alpha_t)$, and substituting
$\epsilon_\theta = (x_t - \sqrt{\bar\alpha_t}\,\hat x_0) / \sqrt{1 - \bar\alpha_t}$ turns the second row into the first.

**Clipping breaks the substitution.** The google/ddpm-* schedulers (\`clip_sample: true\`) replace $\hat x_0$ by
$\mathrm{clip}(\hat x_0) \in [-1, 1]$ before the step. DDPM then uses $\mathrm{clip}(\hat x_0)$ and $x_t$; DDIM uses
$\mathrm{clip}(\hat x_0)$ and the model's **unclipped** $\epsilon_\theta$, and the pair no longer satisfies the relation
the substitution needs. diffusers' \`use_clipped_model_output\` re-derives the noise from the clipped prediction,
$\epsilon = (x_t - \sqrt{\bar\alpha_t}\,\mathrm{clip}(\hat x_0)) / \sqrt{1 - \bar\alpha_t}$, and the two agree again
(identity 10-clipped-model-output in docs/math.md).
`);

code(String.raw`
import {
  DDIMPipeline,
  DDPMPipeline,
  encodePng,
  fromPretrained,
  imageError,
  imageGrid,
  plotCurves,
  plotHistogram,
  show,
  showTable,
  Tensor,
} from "../mod.ts";
`);

md(String.raw`
**Parameters.** Change one and rerun the notebook.

**Use a real checkpoint.** Set \`LEARNED_MODEL\` to a diffusers checkpoint folder (docs/checkpoints.md), e.g.
\`"../checkpoints/ddpm-cifar10-32"\`; google/ddpm-cifar10-32 uses \`variance_type: "fixed_large"\`, which is not
$\eta = 1$, so give it a scheduler with \`fixed_small\` to compare. \`EXACT_MODEL\` is the embedded exact denoiser of the
shapes law (notebook 2), \`LEARNED_MODEL\` a network trained on the same law (notebook 11).
`);

code(String.raw`
const EXACT_MODEL = "builtin:shapes32";
const LEARNED_MODEL = "builtin:ddpm-shapes32";
const SEED = 0; // one seed for x_T and every step's z, shared by all runs
const BATCH = 4;
const STEPS = 1000; // all training timesteps on the exact model
const LEARNED_STEPS = 100; // the identity holds for any sub-sequence; 100 keeps the trained network quick
const LEARNED_BATCH = 2;
`);

md(String.raw`
## On the exact model: five runs, one seed

Three settings of clipping, for each sampler. \`trajectory: 10\` keeps every tenth step so we can see where the runs
part.
`);

code(String.raw`
type Run = Awaited<ReturnType<DDIMPipeline["sample"]>>;
// at every step of the unclipped DDPM run: the fraction of predicted-x0 values outside [-1, 1]
const outsideByModel = new Map<string, { t: number[]; fraction: number[] }>();
async function fiveRuns(model: string, steps: number, batchSize: number): Promise<Record<string, Run>> {
  const ddpm = await DDPMPipeline.fromPretrained(model);
  const ddim = await DDIMPipeline.fromPretrained(model);
  const common = { seed: SEED, batchSize, numInferenceSteps: steps, trajectory: 10 };
  const outside = { t: [] as number[], fraction: [] as number[] };
  outsideByModel.set(model, outside);
  const count = (x: Tensor) => x.data.reduce((n, v) => n + (Math.abs(v) > 1 ? 1 : 0), 0) / x.size;
  return {
    "DDPM, clip on": await ddpm.sample({ ...common }),
    "DDIM eta 1, clip on": await ddim.sample({ ...common, eta: 1 }),
    "DDIM eta 1, clip on, clipped eps": await ddim.sample({ ...common, eta: 1, useClippedModelOutput: true }),
    "DDPM, clip off": await ddpm.sample({
      ...common,
      clipSample: false,
      onStep: ({ t, predX0 }) => void (outside.t.push(t), outside.fraction.push(count(predX0))),
    }),
    "DDIM eta 1, clip off": await ddim.sample({ ...common, eta: 1, clipSample: false }),
  };
}
const started = performance.now();
const runs = await fiveRuns(EXACT_MODEL, STEPS, BATCH);
console.log(\`5 runs of \${STEPS} steps in \${((performance.now() - started) / 1000).toFixed(1)} s\`);
const names = Object.keys(runs);
await show(encodePng(imageGrid(names.map((name) => runs[name].samples.splitBatch()), { rowTitles: names, scale: 2 })));
`);

md(String.raw`
Same $x_T$ and same $z$ in every row; the images look alike, but are they equal? The differences on the $[0, 1]$ scale
that images are saved in:
`);

code(String.raw`
const PAIRS = [
  ["DDPM, clip on", "DDIM eta 1, clip on"],
  ["DDPM, clip on", "DDIM eta 1, clip on, clipped eps"],
  ["DDPM, clip off", "DDIM eta 1, clip off"],
] as const;
const maxAbs = (a: Tensor, b: Tensor) => a.data.reduce((m, v, k) => Math.max(m, Math.abs(v - b.data[k]) / 2), 0);
function differences(of: Record<string, Run>) {
  return PAIRS.map(([a, b]) => ({
    "run A": a,
    "run B": b,
    "max abs difference on [0,1]": maxAbs(of[a].samples, of[b].samples),
    "MSE on [0,1]": imageError(of[a].samples, of[b].samples).mse,
  }));
}
await showTable(differences(runs));
`);

md(String.raw`
With clipping off, or with the clipped noise, DDIM at $\eta = 1$ and DDPM agree to float32 rounding: the differences
are of the order of the float32 rounding error accumulated over the steps of two different but algebraically equal
formulas. With clipping on and the model's own noise they differ visibly. How the difference spreads over the values of
the images (the count axis is logarithmic, so that the few values in the tails show beside the thousands near zero):
`);

code(String.raw`
const [first, second] = PAIRS[0];
const difference = runs[first].samples.data.map((v, k) => (v - runs[second].samples.data[k]) / 2);
const unchanged = difference.filter((d) => Math.abs(d) < 1e-6).length;
console.log(\`\${unchanged} of \${difference.length} values differ by less than 1e-6\`);
await show(plotHistogram(difference, {
  bins: 50,
  yType: "log",
  marginLeft: 50,
  xLabel: \`(\${first}) - (\${second}), per value, on [0, 1]\`,
  yLabel: "number of values (log scale)",
  title: "Per-value difference, clipping on, exact model",
}));
`);

md(String.raw`
## Where the runs part

Clipping only acts while $\hat x_0$ leaves $[-1, 1]$. The first plot follows the unclipped DDPM run and counts the
fraction of $\hat x_0$ values outside $[-1, 1]$ at every step; the second shows the largest gap between the
clipped DDPM run and each DDIM run along the way. Both read left to right in sampling order: $t = 999$ on the left,
$t = 0$ on the right.
`);

code(String.raw`
function whereTheyPart(of: Record<string, Run>, model: string) {
  const recorded = of["DDPM, clip off"].trajectory!;
  const outside = outsideByModel.get(model)!;
  const gap = (name: string) =>
    of[name].trajectory!.map((step, k) =>
      Math.max(1e-9, maxAbs(step.x, of["DDPM, clip on"].trajectory![k].x))
    );
  return [
    plotCurves({ "predicted x0 outside [-1, 1]": outside.fraction }, {
      x: outside.t,
      reverse: true,
      yDomain: [0, Math.max(1e-3, ...outside.fraction)],
      xLabel: "timestep t (sampling runs left to right)",
      yLabel: "fraction of values",
      marginLeft: 50,
      title: \`\${model}: when clipping acts (unclipped DDPM run)\`,
    }),
    plotCurves({
      "DDIM eta 1, clip on": gap("DDIM eta 1, clip on"),
      "DDIM eta 1, clipped eps": gap("DDIM eta 1, clip on, clipped eps"),
    }, {
      x: recorded.map((s) => s.t),
      reverse: true,
      yType: "log",
      xLabel: "timestep t (sampling runs left to right)",
      yLabel: "max |x_t - x_t(DDPM, clip on)| on [0, 1]",
      marginLeft: 60,
      title: \`\${model}: gap to the clipped DDPM run along the trajectory\`,
    }),
  ];
}
function firstClipped(model: string) {
  const { t, fraction } = outsideByModel.get(model)!;
  const first = fraction.findIndex((f) => f > 0);
  if (first < 0) return "clipping never acts";
  return \`clipping first acts at t = \${t[first]} (step \${first} of \${t.length}), on \` +
    \`\${(100 * fraction[first]).toPrecision(2)}% of the predicted x0 values\`;
}
console.log(firstClipped(EXACT_MODEL));
for (const figure of whereTheyPart(runs, EXACT_MODEL)) await show(figure);
`);

md(String.raw`
On the exact model $\hat x_0$ stays inside $[-1, 1]$ while $t$ is large, where it is a smooth average of shapes, and
first leaves it at the timestep printed above, where the guess sharpens into a shape whose colours sit near the ends
of the range. The gap between DDIM and DDPM with clipping on stays at rounding level until about that step, jumps there
by orders of magnitude, and stays large: once the two runs differ, the same $z$ is added to different samples. With the
clipped noise the gap stays at rounding level all the way. In the final images almost no value is left unchanged (the
count printed above the histogram), most move a little and the largest by the 0.1271 of the table. (The trained
network below overshoots at large $t$ instead, where $\hat x_0$ is guessed from almost pure noise.)

## On the trained network

The identity is about formulas, so it must hold for any noise predictor, a trained network included. The same five runs
on \`LEARNED_MODEL\`, with \`LEARNED_STEPS\` steps: DDPM and DDIM then step along the same sub-sequence of timesteps,
and with $\eta = 1$, $\sigma_{\tau_i}^2$ is DDPM's $\tilde\beta$ for the skipped step, so the identity still applies.
`);

code(String.raw`
const learnedStarted = performance.now();
const learned = await fiveRuns(LEARNED_MODEL, LEARNED_STEPS, LEARNED_BATCH);
const unclippedLargest = learned["DDPM, clip off"].samples.data.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
console.log(
  \`5 runs of \${LEARNED_STEPS} steps in \${((performance.now() - learnedStarted) / 1000).toFixed(1)} s\n\` +
    \`\${firstClipped(LEARNED_MODEL)}\nlargest |x_0| of the unclipped DDPM run: \${unclippedLargest.toFixed(1)}\`,
);
await show(encodePng(imageGrid(names.map((name) => learned[name].samples.splitBatch()), { rowTitles: names, scale: 2 })));
await showTable(differences(learned));
for (const figure of whereTheyPart(learned, LEARNED_MODEL)) await show(figure);
`);

md(String.raw`
The identity survives the trained network: with the clipped noise, and with clipping off, DDIM at $\eta = 1$ and DDPM
agree to rounding (the second and third rows of the table). What changes is where clipping acts. For this network most
of $\hat x_0$ is outside $[-1, 1]$ from the first step on (printed above): at large $t$,
$\hat x_0 = (x_t - \sqrt{1 - \bar\alpha_t}\,\epsilon_\theta) / \sqrt{\bar\alpha_t}$ multiplies the network's error by
$1 / \sqrt{\bar\alpha_t}$, and this network's error where $x_t$ is nearly pure noise is not small (notebook 11). So
with clipping on, DDIM with the model's own noise leaves DDPM at the very first step and ends at other shapes (first two
rows of the figure). With clipping off, both samplers produce images far outside the range (the printed largest
$|x_0|$; the figure clamps them), and still agree with each other: the identity says the two samplers are one, not that
the result is a good image. For this checkpoint \`clip_sample\` is not optional; the comparison of formulas needs
\`use_clipped_model_output\`.

## Recap

- "DDIM with $\eta = 1$ is DDPM" is an identity between formulas: with the same noise prediction and the same $z$, the
  two samplers produce the same images up to float32 rounding, on the exact model and on a trained network alike.
- diffusers' \`clip_sample\` changes DDIM's formula in a way that breaks the identity unless \`use_clipped_model_output\`
  is set; to compare the two samplers, turn clipping off or set that option.

## Exercises

1. Set \`LEARNED_STEPS = 1000\`: does the agreement with clipping off survive ten times more steps of rounding?
2. Give the DDPM pipeline a scheduler with \`variance_type: "fixed_large"\` (notebook 6 does this): which $\eta$, if any,
   reproduces it?
3. With clipping on, which of the two runs (DDPM or DDIM with the model's own noise) lands closer to the exact law?
   Score both with \`meanLogLikelihood\` against \`builtinMixture(EXACT_MODEL)\` on a larger \`BATCH\`.
`);

await notebook.write();
