/**
 * Writes notebooks/08_inversion.ipynb, unexecuted: `deno run -A tools/notebooks/08_inversion.ts`, then
 * `notebooks/run.sh notebooks/08_inversion.ipynb` executes it in place.
 *
 * Cells are written with String.raw so LaTeX keeps its backslashes; inside them "\`" stands for a backtick and
 * "\${" for a template placeholder of the notebook's own code.
 *
 * @module
 */

import { notebookWriter } from "./_notebook.ts";

const notebook = notebookWriter("08_inversion");
const { md, code } = notebook;

md(String.raw`
# 8. Inversion and reconstruction

Previous: [7. $\eta = 1$ against DDPM](07_eta1_vs_ddpm.ipynb) · Next: [9. Exact inversion](09_exact_inversion.ipynb)

At $\eta = 0$ the DDIM step is an Euler step of an ODE (the paper's eq. 13):

$$\frac{x_{t-1}}{\sqrt{\bar\alpha_{t-1}}} = \frac{x_t}{\sqrt{\bar\alpha_t}} +
\left(\sqrt{\frac{1 - \bar\alpha_{t-1}}{\bar\alpha_{t-1}}} - \sqrt{\frac{1 - \bar\alpha_t}{\bar\alpha_t}}\right)
\epsilon_\theta(x_t, t).$$

An ODE can be run either way. Running the same formula with the timesteps ascending maps an image $x_0$ to a latent
$x_T$ (diffusers' \`DDIMInverseScheduler\`); decoding that $x_T$ with ordinary DDIM gives $x_0$ back, up to the
discretisation error of the two Euler passes (the paper's section 5.4 and its Table 2). Each inversion step must use
$\epsilon_\theta$ at the point it starts from, not the one it reaches (which is unknown), so the way up is not exactly the
reverse of the way down; that mismatch is the whole error, and it shrinks as the steps get finer. Notebook 9 removes it
with exact methods.

| part | model | why this model |
|---|---|---|
| an image, its latent, its reconstruction | \`builtin:ddpm-shapes32\` (trained) | the paper's Table 2 is about a trained network |
| the Table 2 analogue | \`builtin:ddpm-shapes32\` | the same, computed small here and in full by a benchmark |
| the error of the sampler alone, and its order | \`builtin:shapes32\` (exact) | with $\epsilon^*$ exact, only the discretisation is left |
| images the model does not know | \`builtin:shapes32\` | its exact field pulls such images onto its own shapes |
`);

code(String.raw`
import {
  builtinMixture,
  DDIMPipeline,
  decodeLatents,
  drawShapes,
  encodePng,
  fitConvergenceOrder,
  fromPretrained,
  imageError,
  imageGrid,
  invert,
  plotCurves,
  reconstruct,
  SHAPE_KINDS,
  show,
  showTable,
  Tensor,
  TorchGenerator,
} from "../mod.ts";
`);

md(String.raw`
**Parameters.** Change one and rerun the notebook.

**Use a real checkpoint.** Set \`MODEL\` to a diffusers checkpoint folder (docs/checkpoints.md) and load your own
picture, cropped and resized to the model's size, in $[-1, 1]$:

\`\`\`ts
const MODEL = "../checkpoints/ddpm-celebahq-256";
const images = await loadImageTensor("face.png", { size: 256 });
\`\`\`

(At 256 x 256 each step costs about 4 s on a 2-core CPU; keep the step counts to 50 or fewer.)
`);

code(String.raw`
const MODEL = "builtin:ddpm-shapes32"; // a trained network of the shapes law
const EXACT_MODEL = "builtin:shapes32"; // the exact model of the same law
const IMAGES = 6; // images rendered by the data set's drawing code, one of each kind
const IMAGE_SEED = 7;
const STEPS = 50; // steps each way in the first figures
const TABLE2_STEPS = [10, 20, 50]; // the in-notebook Table 2 analogue on the trained network
const EXACT_STEPS = [10, 20, 50, 100, 200]; // the sampler alone, on the exact model
const RESULT = "../docs/learned-models/result.json"; // written by \`bun bench/learned.ts\`
`);

md(String.raw`
## An image, its latent, its reconstruction

Six images drawn by the shapes data set's own renderer (\`drawShapes\`), inverted with $S$ = \`STEPS\` steps and decoded
again, with no clipping (inversion needs the pure ODE):
`);

code(String.raw`
const { unet, scheduler } = await fromPretrained(MODEL);
const pipe = new DDIMPipeline({ unet, scheduler });
const { images, params } = drawShapes(IMAGES, { seed: IMAGE_SEED });
const inversion = await invert(pipe, images, { numInferenceSteps: STEPS, trajectory: true });
const decoded = await decodeLatents(pipe, inversion, { trajectory: true });
const roundTrip = imageError(images, decoded.samples);
await show(encodePng(imageGrid([images.splitBatch(), inversion.latents.splitBatch(), decoded.samples.splitBatch()], {
  rowTitles: ["image x_0", "latent x_T (inverted)", "reconstruction"],
  colTitles: params.map((p) => SHAPE_KINDS[p.mode]),
  scale: 2,
})));
const latent = inversion.latents.data;
const mean = latent.reduce((s, v) => s + v, 0) / latent.length;
const std = Math.sqrt(latent.reduce((s, v) => s + (v - mean) ** 2, 0) / latent.length);
await showTable([{ S: STEPS, "MSE on [0,1]": roundTrip.mse, "PSNR (dB)": roundTrip.psnr, "latent mean": mean, "latent std": std }]);
`);

md(String.raw`
The latent is not pure noise to the eye: the outline of each shape shows through it. It holds the whole image, which the
decoder returns, as the table's MSE and PSNR say. Nor are its values those of a draw of $\mathcal N(0, I)$: the mean is
near $0$, but the standard deviation, printed above, is well below $1$. The distribution of its values against the
density of $\mathcal N(0, 1)$:
`);

code(String.raw`
const BINS = 40;
const [low, high] = [-4, 4];
const width = (high - low) / BINS;
const counts = new Array(BINS).fill(0);
for (const v of latent) if (v >= low && v < high) counts[Math.floor((v - low) / width)]++;
const centres = counts.map((_, k) => low + (k + 0.5) * width);
await show(plotCurves({
  "inverted latents": counts.map((c) => c / (latent.length * width)),
  "N(0, 1)": centres.map((x) => Math.exp(-x * x / 2) / Math.sqrt(2 * Math.PI)),
}, {
  x: centres,
  xLabel: "value of x_T",
  yLabel: "density",
  title: \`Values of the inverted latents (\${IMAGES} images) against N(0, 1)\`,
}));
`);

md(String.raw`
The latents' values are more concentrated than $\mathcal N(0, 1)$. An inverted latent is the point the ODE maps to the
image, and nothing forces it to look like a fresh draw; editing methods that sample around it have to keep this in mind.

Inside the round trip: two values of the first image's $x_t$, on the way up (inversion, right to left on this axis) and
on the way back (decoding, left to right), both against the timestep with $t = 999$ on the left as in every sampling
plot. The decoder nearly retraces the path the inversion took, which is why it finds the image again. Below them, the
predicted $\hat x_0$ along the inversion.
`);

code(String.raw`
const up = inversion.trajectory!; // inversion record k: x at the timestep t_k (ascending; the last is the latent)
const down = decoded.trajectory!; // decoding record j: x one step below its t, i.e. at t_{S-2-j}
const levels = up.map((s) => s.t);
const atLevel = (p: number) => levels.map((_, k) => (k === levels.length - 1 ? inversion.latents : down[levels.length - 2 - k].x).data[p]);
const perImage = images.size / IMAGES;
const watched = [perImage / 2 + 16, 5 * 32 + 5]; // a value at the centre (second channel) and one near a corner
const traces: Record<string, number[]> = {};
const predicted: Record<string, number[]> = {};
for (const p of watched) {
  traces[\`value \${p}, inversion\`] = up.map((s) => s.x.data[p]);
  traces[\`value \${p}, decoding\`] = atLevel(p);
  predicted[\`value \${p}\`] = up.map((s) => s.predX0.data[p]);
}
// over every value of the first image: how far x_t and the predicted x0 move, and how far the two ways part
let moveX = 0;
let movePred = 0;
let gap = 0;
for (let p = 0; p < perImage; p++) {
  const xs = up.map((s) => s.x.data[p]);
  const ps = up.map((s) => s.predX0.data[p]);
  moveX += Math.max(...xs) - Math.min(...xs);
  movePred += Math.max(...ps) - Math.min(...ps);
  const back = atLevel(p);
  gap = Math.max(gap, ...xs.map((v, k) => Math.abs(v - back[k])));
}
console.log(
  \`first image, mean over its values of (largest - smallest) along the inversion: x_t \${(moveX / perImage).toFixed(3)}, \` +
    \`predicted x0 \${(movePred / perImage).toFixed(3)}\`,
);
console.log(\`largest gap between the way up and the way back at the same level: \${gap.toFixed(3)}\`);
await show(plotCurves(traces, {
  x: levels,
  reverse: true,
  xLabel: "timestep t",
  yLabel: "x_t, first image",
  title: "The way up (inversion) and the way back (decoding) through the same levels",
}));
await show(plotCurves(predicted, {
  x: levels,
  reverse: true,
  xLabel: "timestep t",
  yLabel: "predicted x0, first image",
  title: "The predicted x0 along the inversion",
}));
`);

md(String.raw`
The way back stays close to the way up at every level but not on it: the largest gap over all values of the first image
is printed above, on the $[-1, 1]$ scale of $x_t$. Each inversion step evaluates $\epsilon_\theta$ at the level it
starts from, while the decoding step it should undo evaluates it at the level above, and the small mismatches add up.

The predicted $\hat x_0$ does not move less than $x_t$ on the way up; it moves more. Averaged over the values of the
first image, its range along the inversion is 4.883 against 0.696 for $x_t$ (printed above). It stays at the image while
$t$ is small and swings widely as $t$ approaches $999$, where $x_t$ is mostly noise and
$\hat x_0 = (x_t - \sqrt{1 - \bar\alpha_t}\,\epsilon_\theta) / \sqrt{\bar\alpha_t}$ divides the network's error by a
small $\sqrt{\bar\alpha_t}$.

## The Table 2 analogue on the trained network

The paper's Table 2 reports the per-dimension MSE of the round trip on CIFAR-10 (pixels in $[0, 1]$) for $S$ from $10$
to $1000$. Here it is computed small, with the \`IMAGES\` images above and $S$ in \`TABLE2_STEPS\`, and loaded in full
from the benchmark beside this notebook: \`bun bench/learned.ts\` writes docs/learned-models/result.json (32 images per
$S$: 16 exact draws of the law and 16 rendered images, with standard errors over the images).
`);

code(String.raw`
const small = [];
for (const steps of TABLE2_STEPS) {
  const result = steps === STEPS ? roundTrip : (await reconstruct(pipe, images, { numInferenceSteps: steps }));
  small.push(result.mse);
}
const bench = JSON.parse(await Deno.readTextFile(RESULT)).reconstruction;
const benchSteps: number[] = bench.rows.map((r: { steps: number }) => r.steps);
await showTable(benchSteps.map((steps, k) => {
  const r = bench.rows[k];
  const here = TABLE2_STEPS.indexOf(steps);
  return {
    S: steps,
    "this notebook (rendered)": here >= 0 ? small[here] : "-",
    "bench: exact draws": \`\${r.mse.toExponential(2)} ± \${r.mseError.toExponential(1)}\`,
    "bench: rendered": \`\${r.mseDrawn.toExponential(2)} ± \${r.mseDrawnError.toExponential(1)}\`,
    "paper, Table 2 (CIFAR-10)": r.paper,
  };
}));
const drawnFit = fitConvergenceOrder(benchSteps, bench.rows.map((r: { mseDrawn: number }) => r.mseDrawn));
console.log(
  \`bench, rendered images: MSE slope \${(-drawnFit.order).toFixed(2)}, so the error's order is about \` +
    \`\${(drawnFit.order / 2).toFixed(2)}\`,
);
await show(plotCurves({
  "bench: exact draws": bench.rows.map((r: { mse: number }) => r.mse),
  "bench: rendered images": bench.rows.map((r: { mseDrawn: number }) => r.mseDrawn),
  "paper, CIFAR-10 (Table 2)": bench.rows.map((r: { paper: number }) => r.paper),
}, {
  x: benchSteps,
  xType: "log",
  yType: "log",
  dots: true,
  errors: {
    "bench: exact draws": bench.rows.map((r: { mseError: number }) => r.mseError),
    "bench: rendered images": bench.rows.map((r: { mseDrawnError: number }) => r.mseDrawnError),
  },
  marginLeft: 60,
  xLabel: "steps S (each way)",
  yLabel: "MSE on [0, 1]",
  title: "Trained network: reconstruction error, ± one standard error",
}));
`);

md(String.raw`
As in the paper's Table 2, the error falls steadily with $S$. The round trips computed here, with six images, are of
the same size as the benchmark's. The trained network reconstructs better than the paper's CIFAR-10 model at every $S$
(its data are far simpler), and its error falls faster: the log-log slope of the MSE of rendered images, printed above,
is -1.86, so the error itself falls with an order of about 0.93 in $S$, close to Euler's first order. The MSE is a
squared error, so its slope is twice the order; reading the slope as the order would make DDIM look like a second-order
method.

## The sampler alone, on the exact model

With the exact $\epsilon^*$ the only error left is the discretisation. Exact draws of the law are images this model
produces itself; images rendered by the data set's code are not quite (the law is a mixture of low-rank Gaussians fitted
to them). Both through the round trip, for each $S$ in \`EXACT_STEPS\`:
`);

code(String.raw`
const exactPipe = await DDIMPipeline.fromPretrained(EXACT_MODEL);
const mixture = builtinMixture(EXACT_MODEL);
const draws = mixture.sample(IMAGES, new TorchGenerator(IMAGE_SEED)).samples.reshape(images.shape);
const drawErrors: number[] = [];
const renderedErrors: number[] = [];
const renderedResults = new Map<number, Tensor>();
for (const steps of EXACT_STEPS) {
  drawErrors.push((await reconstruct(exactPipe, draws, { numInferenceSteps: steps })).mse);
  const rendered = await reconstruct(exactPipe, images, { numInferenceSteps: steps });
  renderedErrors.push(rendered.mse);
  renderedResults.set(steps, rendered.reconstruction);
}
await showTable(EXACT_STEPS.map((steps, k) => ({
  S: steps,
  "exact draws": drawErrors[k],
  "rendered images": renderedErrors[k],
})));
const drawsFit = fitConvergenceOrder(EXACT_STEPS, drawErrors);
console.log(
  \`exact draws: MSE slope \${(-drawsFit.order).toFixed(2)}, so the error's order is about \` +
    \`\${(drawsFit.order / 2).toFixed(2)}\`,
);
await show(plotCurves({ "exact draws": drawErrors, "rendered images": renderedErrors }, {
  x: EXACT_STEPS,
  xType: "log",
  yType: "log",
  dots: true,
  marginLeft: 60,
  xLabel: "steps S (each way)",
  yLabel: "MSE on [0, 1]",
  title: \`\${EXACT_MODEL} (exact): reconstruction error of DDIM inversion\`,
}));
`);

md(String.raw`
For exact draws the error falls steadily, with an MSE slope of -1.75 (printed above): an order of about 0.87, below $1$,
likely because the few-step end of the range is not yet asymptotic (notebook 6 measures the order on an exact ODE solution).
The model is exact, so this is the discretisation alone.

The rendered images tell a different story: their error falls only from $S = 10$ to $20$, and then grows with $S$. A likely explanation: the mixture
only approximates them (each component is a low-rank Gaussian fitted to rendered images), so they lie slightly off the
images it produces, and near $t = 0$ the exact $\epsilon^*$ of such a mixture changes fast off its components. The finer the
steps, the more faithfully the inversion follows that field, to the latent of an image the mixture does produce. Which
image that is, the next cell shows: the shape of each image, by the mixture component that explains it best (one
component per kind), before and after the round trip.
`);

code(String.raw`
// the kind of an image: the mixture component (one per kind) that explains it best
const kindsOf = (x: Tensor) => {
  const weights = mixture.posteriorWeights(x, 1 - 1e-4);
  return x.splitBatch().map((_, b) => {
    const row = Array.from(weights.slice(b * mixture.count, (b + 1) * mixture.count));
    return SHAPE_KINDS[row.indexOf(Math.max(...row))];
  });
};
const largest = EXACT_STEPS.at(-1)!;
const exactBack = kindsOf(renderedResults.get(largest)!);
const learnedBack = kindsOf(decoded.samples);
await show(encodePng(imageGrid([images.splitBatch(), renderedResults.get(largest)!.splitBatch(), decoded.samples.splitBatch()], {
  rowTitles: ["rendered image", \`exact model, S = \${largest}\`, \`trained network, S = \${STEPS}\`],
  scale: 2,
})));
await showTable(params.map((p, b) => ({
  "drawn as": SHAPE_KINDS[p.mode],
  "kind by the mixture": kindsOf(images)[b],
  [\`exact model, S = \${largest}, comes back as\`]: exactBack[b],
  [\`trained network, S = \${STEPS}, comes back as\`]: learnedBack[b],
})));
`);

md(String.raw`
On the exact model four of the six rendered images come back as another shape: the circle as a square, the triangle as
a diamond, the cross as a circle and the star as a triangle; only the square and the diamond return as themselves. So
the decoder does not return a nearby image but a different one that the mixture knows. The trained network, trained on
draws of the same mixture, returns all six shapes as drawn (bottom row). A likely reason is that a network is smooth
where the exact $\epsilon^*$ is steep, so its ODE does not snap images onto the mixture's components. A real checkpoint
can still fail this way for pictures far from its training data, which is why editing methods built on inversion
(null-text inversion and others) add corrections.

## Recap

- DDIM inversion runs the $\eta = 0$ ODE backwards; decoding the latent returns the image up to the discretisation error
  of the two passes, which falls as $S$ grows.
- On a log-log plot the MSE falls with slope $-2p$ for a method of order $p$: the MSE is a squared error.
- The exact model shows the sampler alone, and also that a perfect denoiser of an approximate law pulls images it does
  not know onto its own; a trained network of the same law kept every shape here.

## Exercises

1. Set \`STEPS = 10\`: which details of the reconstructions go first?
2. Invert an exact draw of the law on the trained network (\`builtinMixture(EXACT_MODEL).sample\`): does it come back
   better or worse than a rendered image?
3. Decode an inverted latent with $\eta = 1$ (\`pipe.sample({ xT: inversion.latents, eta: 1, seed: 0 })\`): how much of the
   image survives?
`);

await notebook.write();
