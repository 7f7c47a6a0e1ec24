/**
 * Writes notebooks/05_determinism.ipynb, unexecuted: `deno run -A tools/notebooks/05_determinism.ts`, then
 * `notebooks/run.sh notebooks/05_determinism.ipynb` executes it in place.
 *
 * Cells are written with String.raw so LaTeX keeps its backslashes; inside them "\`" stands for a backtick and
 * "\${" for a template placeholder of the notebook's own code.
 *
 * @module
 */

import { notebookWriter } from "./_notebook.ts";

const notebook = notebookWriter("05_determinism");
const { md, code } = notebook;

md(String.raw`
# 5. Determinism and consistency

Previous: [4. Trajectories](04_trajectories.ipynb) · Next: [6. Accelerated sampling](06_accelerated_sampling.ipynb)

One DDIM step (eq. 12 of the paper) goes from $x_t$ to $x_{t-1}$ by

$$x_{t-1} = \sqrt{\bar\alpha_{t-1}}\,\hat x_0 + \sqrt{1 - \bar\alpha_{t-1} - \sigma_t^2}\;\epsilon_\theta(x_t, t) + \sigma_t z,
\qquad \hat x_0 = \frac{x_t - \sqrt{1 - \bar\alpha_t}\,\epsilon_\theta(x_t, t)}{\sqrt{\bar\alpha_t}},\qquad z \sim \mathcal N(0, I),$$

with the noise level set by $\eta$ (eq. 16):
$\sigma_t(\eta) = \eta\,\sqrt{(1 - \bar\alpha_{t-1}) / (1 - \bar\alpha_t)}\,\sqrt{1 - \bar\alpha_t / \bar\alpha_{t-1}}$.

At $\eta = 0$ every $\sigma_t$ is $0$: no $z$ is ever drawn, and sampling is a fixed function $x_T \mapsto x_0$. This
notebook measures the two consequences:

| property | what it says | where |
|---|---|---|
| determinism | at $\eta = 0$ the seed matters only through $x_T$; fix $x_T$ and the image is fixed, bit for bit | first half |
| consistency | at $\eta = 0$ the same $x_T$ gives nearly the same image for any number of steps $S$, so $x_T$ is a latent code of the image | second half (the paper's section 5.2) |

**Why the exact model.** \`builtin:shapes32\` predicts the exact noise $\epsilon^*(x_t, t) = \mathbb E[\epsilon \mid x_t]$ of
a known Gaussian mixture (notebook 2), so every difference below is the sampler's own. Determinism is a property of the
arithmetic and holds for any network; consistency is where the exact model teaches something a trained network blurs:
with $\epsilon^*$, the $\eta = 0$ images converge, as $S$ grows, to the solution of one ODE, and what is left at finite $S$
is pure discretisation error. On a trained network the limit is the ODE of $\epsilon_\theta$ instead (exercise 1).

In ddimlab, as in diffusers' pipelines, one generator draws $x_T$ first and then the noise $z$ of every step. Here $x_T$
is drawn once and passed in, and only the seed of the step noise varies.
`);

code(String.raw`
import {
  DDIMPipeline,
  encodePng,
  imageError,
  imageGrid,
  meanAndError,
  plotCurves,
  show,
  showTable,
  Tensor,
  TorchGenerator,
} from "../mod.ts";
`);

md(String.raw`
**Parameters.** Change one and rerun the notebook.

**Use a real checkpoint.** \`MODEL\` can be any diffusers checkpoint folder: download one as docs/checkpoints.md says and
set \`MODEL = "../checkpoints/ddpm-celebahq-256"\` (about 4 s per step and image at 256 x 256 on a 2-core CPU, so lower
\`STEPS\`, \`SEEDS\` and \`CONSISTENCY_STEPS\` first). \`"builtin:ddpm-shapes32"\` is the trained network of the same data.
`);

code(String.raw`
const MODEL = "builtin:shapes32"; // the exact model; "builtin:ddpm-shapes32" is a trained network of the same law
const X_T_SEED = 2020; // the seed of the starting noise x_T that every run shares
const SEEDS = [0, 1, 2, 3]; // seeds of the step noise z
const ETAS = [0, 0.5, 1];
const STEPS = 50;
const BATCH = 4; // images per run in the spread measurement
const ETA_SWEEP = [0, 0.1, 0.2, 0.3, 0.5, 0.7, 1];
const CONSISTENCY_STEPS = [10, 20, 50, 100, 200, 1000]; // the last is the reference
const CONSISTENCY_BATCH = 4;
`);

md(String.raw`
## Determinism: one $x_T$, four seeds

Each row runs one $\eta$ from the same $x_T$ with four seeds of the step noise.
`);

code(String.raw`
const pipe = await DDIMPipeline.fromPretrained(MODEL);
const [channels, size] = [pipe.unet.inChannels, pipe.unet.sampleSize as number];
const xT = new TorchGenerator(X_T_SEED).randn([1, channels, size, size]);
const runs = new Map<string, Awaited<ReturnType<typeof pipe.sample>>>();
for (const eta of ETAS) {
  for (const seed of SEEDS) {
    runs.set(\`\${eta}/\${seed}\`, await pipe.sample({ xT, eta, seed, numInferenceSteps: STEPS, trajectory: true }));
  }
}
await show(encodePng(imageGrid(
  ETAS.map((eta) => SEEDS.map((seed) => runs.get(\`\${eta}/\${seed}\`)!.samples)),
  { rowTitles: ETAS.map((eta) => \`eta = \${eta}\`), colTitles: SEEDS.map((seed) => \`seed \${seed}\`), scale: 3 },
)));
`);

md(String.raw`
The $\eta = 0$ row is four copies of one image; in the other rows the seeds change the picture. Measured against the
seed-0 image of the same row (mean squared error per pixel on the $[0, 1]$ scale, and the largest pixel difference):
`);

code(String.raw`
await showTable(ETAS.flatMap((eta) =>
  SEEDS.slice(1).map((seed) => {
    const reference = runs.get(\`\${eta}/0\`)!.samples;
    const other = runs.get(\`\${eta}/\${seed}\`)!.samples;
    return {
      eta,
      "seeds compared": \`0 and \${seed}\`,
      "MSE on [0,1]": imageError(reference, other).mse,
      "max abs difference on [0,1]": other.data.reduce((m, v, k) => Math.max(m, Math.abs(v - reference.data[k]) / 2), 0),
    };
  })
));
`);

md(String.raw`
At $\eta = 0$ the differences are exactly zero: not small, zero, because the same floating-point operations run on the
same inputs and the generator is never called.

### Where the seeds part

One pixel of $x_t$ through the sampling loop, one line per seed, step $i = 0$ (the noisiest) on the left; the point at
$i = -1$ is $x_T$. At $\eta = 0$ the four lines are one line. At $\eta = 1$ they start together (same $x_T$) and part at
the first step, where each seed adds its own $\sigma_t z$.
`);

code(String.raw`
const pixel = (channels * size * size) / 2 + size / 2; // a pixel in the middle of the image, second channel
for (const eta of [0, 1]) {
  const first = runs.get(\`\${eta}/0\`)!;
  await show(plotCurves(
    Object.fromEntries(
      SEEDS.map((seed) => [\`seed \${seed}\`, [
        xT.data[pixel],
        ...runs.get(\`\${eta}/\${seed}\`)!.trajectory!.map((s) => s.x.data[pixel]),
      ]]),
    ),
    {
      x: [-1, ...first.trajectory!.map((s) => s.i)],
      xLabel: "step i (i = -1: x_T)",
      yLabel: "x_t at one pixel",
      title: \`eta = \${eta}: one pixel, four seeds of the step noise\`,
    },
  ));
}
`);

md(String.raw`
### How far apart the seeds end, as $\eta$ grows

For each $\eta$, \`BATCH\` images from fixed starting noise are sampled with every seed; the score is the MSE between
the images of two seeds, averaged over the images and over the 6 pairs of seeds. The error bars are one standard error
over the pairs (the pairs share seeds, so they are not independent and the bars are a rough guide).
`);

code(String.raw`
const sweep = ETA_SWEEP;
const xTBatch = new TorchGenerator(X_T_SEED + 1).randn([BATCH, channels, size, size]);
const spread: number[] = [];
const spreadError: number[] = [];
for (const eta of sweep) {
  const images: Tensor[] = [];
  for (const seed of SEEDS) {
    images.push((await pipe.sample({ xT: xTBatch, eta, seed, numInferenceSteps: STEPS })).samples);
  }
  const pairs = images.flatMap((a, j) => images.slice(j + 1).map((b) => imageError(a, b).mse));
  const { mean, standardError } = meanAndError(Float64Array.from(pairs));
  spread.push(mean);
  spreadError.push(standardError);
}
await show(
  plotCurves({ "mean pairwise MSE between seeds": spread }, {
    x: sweep,
    dots: true,
    errors: { "mean pairwise MSE between seeds": spreadError },
    yDomain: [0, Math.max(...spread.map((s, k) => s + spreadError[k]))],
    xLabel: "eta",
    yLabel: "MSE on [0, 1] between two seeds",
    marginLeft: 50,
    title: \`Same x_T, \${SEEDS.length} seeds of the step noise: spread of the results\`,
  }),
);
console.log(\`spread at eta = 0: \${spread[0]}; at eta = 1: \${spread.at(-1)!.toExponential(3)}\`);
`);

md(String.raw`
The spread starts at exactly zero, as printed, and rises quickly with $\eta$ (the injected noise $\sigma_t(\eta)$ is
proportional to $\eta$); for the larger $\eta$ it levels off, and the last points differ by less than their error bars.

## Consistency: one $x_T$, any number of steps

The paper's section 5.2 observes that DDIM samples from the same $x_T$ share their high-level features whatever the
length of the generative trajectory. With the exact model this can be stated precisely. At $\eta = 0$, DDIM is Euler's
method for the ODE of eq. 14 (notebook 6 measures its order), so as $S$ grows the image converges to that ODE's solution
from $x_T$: a fixed image, the one $x_T$ encodes. At $\eta = 1$ no such limit exists: each $S$ draws different step noise,
and different noise gives a different image.

Below, \`CONSISTENCY_BATCH\` starting noises are sampled with every $S$, at $\eta = 0$ and at $\eta = 1$ (same seed of the
step noise for every $S$), and each image is compared with the $S = 1000$ image of the same $x_T$ and $\eta$. The dashed
line is the MSE between two unrelated samples (different $x_T$): the level at which an image has nothing left of the one
it is compared with.
`);

code(String.raw`
const xTs = new TorchGenerator(X_T_SEED + 2).randn([CONSISTENCY_BATCH, channels, size, size]);
const bySteps = new Map<string, Tensor>();
const started = performance.now();
for (const eta of [0, 1]) {
  for (const steps of CONSISTENCY_STEPS) {
    bySteps.set(\`\${eta}/\${steps}\`, (await pipe.sample({ xT: xTs, eta, seed: 3, numInferenceSteps: steps })).samples);
  }
}
console.log(\`\${2 * CONSISTENCY_STEPS.length} runs of \${CONSISTENCY_BATCH} images in \${
  ((performance.now() - started) / 1000).toFixed(1)
} s\`);
const firstImage = (x: Tensor) => x.splitBatch()[0];
await show(encodePng(imageGrid(
  [0, 1].map((eta) => CONSISTENCY_STEPS.map((steps) => firstImage(bySteps.get(\`\${eta}/\${steps}\`)!))),
  { rowTitles: ["eta = 0", "eta = 1"], colTitles: CONSISTENCY_STEPS.map((s) => \`S = \${s}\`), scale: 3 },
)));
`);

code(String.raw`
const largest = CONSISTENCY_STEPS.at(-1)!;
const compared = CONSISTENCY_STEPS.slice(0, -1);
const rows = [];
const curves: Record<string, number[]> = {};
const errors: Record<string, number[]> = {};
for (const eta of [0, 1]) {
  const reference = bySteps.get(\`\${eta}/\${largest}\`)!;
  const name = \`eta = \${eta}\`;
  curves[name] = [];
  errors[name] = [];
  for (const steps of compared) {
    const perImage = imageError(reference, bySteps.get(\`\${eta}/\${steps}\`)!).msePerImage;
    const { mean, standardError } = meanAndError(Float64Array.from(perImage));
    curves[name].push(mean);
    errors[name].push(standardError);
  }
}
// two unrelated samples: image b against image b + 1 of the same S = 1000 run
const reference = bySteps.get(\`0/\${largest}\`)!.splitBatch();
const unrelated = reference.map((image, b) => imageError(image, reference[(b + 1) % reference.length]).mse);
const unrelatedLevel = meanAndError(Float64Array.from(unrelated)).mean;
await showTable(compared.map((steps, k) => ({
  S: steps,
  [\`eta = 0: MSE to S = \${largest}\`]: curves["eta = 0"][k],
  "± s.e. (eta = 0)": errors["eta = 0"][k],
  [\`eta = 1: MSE to S = \${largest}\`]: curves["eta = 1"][k],
  "± s.e. (eta = 1)": errors["eta = 1"][k],
})));
console.log(\`MSE between two unrelated samples: \${unrelatedLevel.toPrecision(4)}\`);
await show(plotCurves(curves, {
  x: compared,
  xType: "log",
  yType: "log",
  dots: true,
  errors,
  rules: { "two unrelated samples": unrelatedLevel },
  marginLeft: 60,
  xLabel: "steps S",
  yLabel: \`MSE on [0, 1] to the S = \${largest} image\`,
  title: "Consistency: the same x_T sampled with S steps, against S = 1000",
}));
`);

md(String.raw`
At $\eta = 0$ the distance to the $S = 1000$ image falls steadily as $S$ grows, far below the level of two unrelated
samples: every $S$ draws the same picture, only more or less sharply resolved, which is the consistency of the paper's section
5.2 made quantitative. At $\eta = 1$ the curve stays near the unrelated level at every $S$: the final image depends on the
step noise, and a different $S$ draws that noise at different steps. So only the deterministic sampler makes $x_T$ a
code for one image, which is what inversion (notebook 8) and interpolation (notebook 10) build on.

## What the exact model can and cannot teach here

It shows the sampler alone: zero differences at $\eta = 0$, and a consistency error that is purely the ODE's
discretisation. It cannot show how a trained network's own errors move the image as $S$ changes. On
\`builtin:ddpm-shapes32\` the $\eta = 0$ images mostly keep their shape across $S$, but not always (in the
$\eta \times S$ grid of notebook 6 one of them turns from a circle into a cross), and their limit is the network's ODE,
not the data law's (exercise 1).

## Recap

- At $\eta = 0$ DDIM draws no noise: the image is a function of $x_T$ alone, exactly, for any seed.
- With $\eta > 0$ the step noise $\sigma_t z$ makes the seed matter, more as $\eta$ grows.
- Consistency (paper, section 5.2): at $\eta = 0$ the same $x_T$ gives the same image for every $S$, up to a
  discretisation error that shrinks with $S$; at $\eta = 1$ it does not.

## Exercises

1. Set \`MODEL = "builtin:ddpm-shapes32"\` (and \`CONSISTENCY_STEPS = [10, 20, 50, 100]\` to keep it quick): are the
   $\eta = 0$ differences still exactly zero, and how does the consistency curve change?
2. Set \`ETA_SWEEP\` to a few values between $0$ and $1/10$: how small must $\eta$ be before the seeds stop
   mattering to the eye?
3. Read the slope of the $\eta = 0$ consistency curve on its log-log axes. If the error of the image falls like
   $S^{-p}$, the MSE, a squared error, falls like $S^{-2p}$: which order $p$ does the slope suggest? Notebook 6
   measures the order against the exact ODE solution.
`);

await notebook.write();
