/**
 * Learned 2-D denoisers against the exact ones: for each builtin 2-D mixture (ring2d, moons2d, grid2d), train a small
 * MLP eps_theta with the DDPM objective (lib/models/train2d.ts), then measure
 *
 * (a) where the network is wrong: the RMS of eps_theta - eps* per band of timesteps t, with eps* the mixture's exact
 *     noise predictor, and the loss E || eps - eps_theta ||^2 / d against the ideal loss E || eps - eps* ||^2 / d
 *     (both by Monte Carlo on fresh draws; their difference is E || eps_theta - eps* ||^2 / d);
 * (b) the Table 1 analogue of the DDIM paper (arXiv 2010.02502) on the learned model: eta = 0, 0.2, 0.5, 1 and DDPM's
 *     sigma-hat (`fixed_large`) at S = 10, 20, 50, 100, 1000, with the log-likelihood of the samples under the true
 *     mixture (gap to exact samples) and the sliced Wasserstein distance to exact samples (with its noise floor), each
 *     with its standard error.
 *
 * Standalone: `bun bench/learned2d.ts [--quick] [--data ring2d,moons2d] [--steps N] [--samples N] [--save DIR]`.
 * It prints a Markdown report on stdout and progress on stderr.
 *
 * @module
 */
import process from "node:process";
import { join } from "node:path";
import { mkdirSync } from "node:fs";
import { BUILTIN_SCHEDULER_CONFIG, builtinMixture } from "../lib/models/builtin_models.ts";
import { DDIMPipeline } from "../lib/pipelines/ddim_pipeline.ts";
import { DDIMScheduler } from "../lib/schedulers/ddim.ts";
import { DDPMPipeline } from "../lib/pipelines/ddpm_pipeline.ts";
import { DDPMScheduler } from "../lib/schedulers/ddpm.ts";
import type { GaussianMixture } from "../lib/models/gaussian_mixture.ts";
import { meanLogLikelihood, slicedWasserstein } from "../lib/math/metrics.ts";
import type { Tensor } from "../lib/core/tensor.ts";
import { TorchGenerator } from "../lib/core/torch_generator.ts";
import { type LearnedDenoiser2d, trainDenoiser2d, type TrainingProgress } from "../lib/models/train2d.ts";
import { orderingFindings, PAPER_TABLE_1, type QualityRow } from "./quality.ts";

/** Options of `benchLearned2d`. */
export interface Learned2dOptions {
  /** Fewer steps and samples, for a fast, noisy run. */
  quick?: boolean;
  /** The data sets (default all three). */
  data?: string[];
  /** Training steps per data set (default 3000; quick 800). */
  steps?: number;
  /** Samples per cell of the table (default 500; quick 300). */
  samples?: number;
  /** Save each trained model as DIR/NAME.safetensors. */
  saveDir?: string;
  /** Where progress lines go (default: stderr). */
  log?: (line: string) => void;
}

/** One band of timesteps in the eps* comparison. */
export interface EpsilonBand {
  /** t in [from, to). */
  from: number;
  to: number;
  /** sqrt(E || eps_theta - eps* ||^2 / d). */
  rmsError: number;
  /** E || eps - eps* ||^2 / d and its standard error. */
  idealLoss: number;
  idealLossError: number;
  /** E || eps - eps_theta ||^2 / d and its standard error. */
  modelLoss: number;
  modelLossError: number;
}

/** One cell of the table, plus the share of samples off the data. */
export interface Learned2dRow extends QualityRow {
  /** The share of samples whose log p is below the 1st percentile of the exact samples' log p (exact: 1%). */
  offData: number;
}

/** Everything measured on one data set. */
export interface Learned2dResult {
  data: string;
  steps: number;
  trainSeconds: number;
  parameters: number;
  /** Mean training loss (raw weights, on the training batches) over the last 10% of the steps. */
  finalTrainingLoss: number;
  /** t uniform over all T timesteps, on fresh draws, EMA weights. */
  overall: EpsilonBand;
  bands: EpsilonBand[];
  samples: number;
  floor: { swd: number; swdError: number; exactLogLikelihood: number; exactLogLikelihoodError: number };
  rows: Learned2dRow[];
}

const VARIANTS: { variant: string; eta: number | null }[] = [
  { variant: "eta = 0", eta: 0 },
  { variant: "eta = 0.2", eta: 0.2 },
  { variant: "eta = 0.5", eta: 0.5 },
  { variant: "eta = 1", eta: 1 },
  { variant: "sigma-hat", eta: null },
];

const BANDS: [number, number][] = [[0, 10], [10, 50], [50, 100], [100, 250], [250, 500], [500, 1000]];

/**
 * Train one learned model per data set and measure it.
 *
 * @param options data sets, steps, samples, quick mode, save folder
 * @returns one result per data set
 */
export async function benchLearned2d(options: Learned2dOptions = {}): Promise<Learned2dResult[]> {
  const log = options.log ?? ((line: string) => console.error(line));
  const quick = options.quick ?? false;
  const names = options.data ?? (quick ? ["ring2d"] : ["ring2d", "moons2d", "grid2d"]);
  const steps = options.steps ?? (quick ? 800 : 3000);
  const samples = options.samples ?? (quick ? 300 : 500);
  const sampleSteps = quick ? [10, 20, 50, 100] : [10, 20, 50, 100, 1000];
  const results: Learned2dResult[] = [];
  for (const name of names) {
    const mixture = builtinMixture(name);
    // 1. train: seed 0, the trainer's defaults, cosine learning rate over `steps`
    const reports: TrainingProgress[] = [];
    const model = trainDenoiser2d(name, {
      steps,
      seed: 0,
      reportEvery: Math.max(1, Math.floor(steps / 100)),
      onProgress: (p) => reports.push(p),
    });
    const trainSeconds = reports[reports.length - 1].seconds;
    const tail = reports.slice(Math.floor(reports.length * 0.9));
    const finalTrainingLoss = tail.reduce((s, r) => s + r.loss, 0) / tail.length;
    log(
      `learned2d: ${name} trained ${steps} steps in ${trainSeconds.toFixed(1)} s, loss ${finalTrainingLoss.toFixed(4)}`,
    );
    if (options.saveDir) {
      mkdirSync(options.saveDir, { recursive: true });
      model.save(join(options.saveDir, `${name}.safetensors`));
    }
    // 2. (a) eps_theta against eps*, per band of t and overall
    const alphaBar = DDPMScheduler.fromConfig(BUILTIN_SCHEDULER_CONFIG).alphasCumprod;
    const draws = quick ? 1000 : 4000;
    const generator = new TorchGenerator(101);
    const overall = epsilonBand(model, mixture, alphaBar, [0, alphaBar.length], 2 * draws, generator);
    const bands = BANDS.map((band) => epsilonBand(model, mixture, alphaBar, band, draws, generator));
    log(`learned2d: ${name} loss ${overall.modelLoss.toFixed(4)} against ideal ${overall.idealLoss.toFixed(4)}`);
    // 3. (b) the Table 1 analogue; every variant starts from the same x_T (seed 2020), clipping off
    const reference = mixture.sample(samples, new TorchGenerator(2021)).samples;
    const second = mixture.sample(samples, new TorchGenerator(2022)).samples;
    const swdOptions = { projections: 128, seed: 2023 };
    const floorSwd = slicedWasserstein(second, reference, swdOptions);
    const logDensity = (x: Tensor) => mixture.logDensity(x);
    const exactLogLikelihood = meanLogLikelihood(reference, logDensity);
    const ddim = new DDIMPipeline({ unet: model, scheduler: DDIMScheduler.fromConfig(model.schedulerConfig) });
    const ddpm = new DDPMPipeline({
      unet: model,
      scheduler: DDPMScheduler.fromConfig({ ...model.schedulerConfig, variance_type: "fixed_large" }),
    });
    const percentile1 = [...exactLogLikelihood.values].sort((a, b) => a - b)[Math.floor(samples / 100)];
    const rows: Learned2dRow[] = [];
    for (const { variant, eta } of VARIANTS) {
      for (const S of sampleSteps) {
        const t0 = performance.now();
        const run = eta === null
          ? await ddpm.sample({ numInferenceSteps: S, seed: 2020, batchSize: samples, clipSample: false })
          : await ddim.sample({ numInferenceSteps: S, eta, seed: 2020, batchSize: samples, clipSample: false });
        const generated = run.samples.reshape([samples, 2]);
        const swd = slicedWasserstein(generated, reference, swdOptions);
        const likelihood = meanLogLikelihood(generated, logDensity);
        rows.push({
          variant,
          eta,
          steps: S,
          swd: swd.distance,
          swdError: swd.standardError,
          // nats per sample (2 dimensions), not per dimension: the 2-D log-density is read per point
          logLikelihoodGap: likelihood.mean - exactLogLikelihood.mean,
          logLikelihoodGapError: Math.hypot(likelihood.standardError, exactLogLikelihood.standardError),
          seconds: (performance.now() - t0) / 1000,
          offData: likelihood.values.filter((v) => v < percentile1).length / samples,
        });
      }
      log(`learned2d: ${name} ${variant} done`);
    }
    results.push({
      data: name,
      steps,
      trainSeconds,
      parameters: model.network.parameterCount,
      finalTrainingLoss,
      overall,
      bands,
      samples,
      floor: {
        swd: floorSwd.distance,
        swdError: floorSwd.standardError,
        exactLogLikelihood: exactLogLikelihood.mean,
        exactLogLikelihoodError: exactLogLikelihood.standardError,
      },
      rows,
    });
  }
  return results;
}

/** Monte Carlo over fresh (x_0, t, eps) with t uniform in [from, to): RMS of eps_theta - eps*, model and ideal loss. */
function epsilonBand(
  model: LearnedDenoiser2d,
  mixture: GaussianMixture,
  alphaBar: Float32Array,
  [from, to]: [number, number],
  n: number,
  generator: TorchGenerator,
): EpsilonBand {
  const x0 = mixture.sample(n, generator).samples;
  const timesteps = Array.from({ length: n }, () => from + (generator.nextUint32() % (to - from)));
  const noise = generator.randn([n, 2]);
  const scheduler = DDPMScheduler.fromConfig(BUILTIN_SCHEDULER_CONFIG);
  const noisy = scheduler.addNoise(x0, noise, timesteps);
  const ideal = mixture.idealNoise(noisy, Float64Array.from(timesteps, (t) => alphaBar[t])).data;
  const predicted = model.noiseAt(noisy.data, timesteps);
  const error = new Float64Array(n);
  const idealLoss = new Float64Array(n);
  const modelLoss = new Float64Array(n);
  for (let b = 0; b < n; b++) {
    for (let c = 0; c < 2; c++) {
      const i = 2 * b + c;
      error[b] += (predicted[i] - ideal[i]) ** 2 / 2;
      idealLoss[b] += (noise.data[i] - ideal[i]) ** 2 / 2;
      modelLoss[b] += (noise.data[i] - predicted[i]) ** 2 / 2;
    }
  }
  const ideal_ = meanAndError(idealLoss);
  const model_ = meanAndError(modelLoss);
  return {
    from,
    to,
    rmsError: Math.sqrt(meanAndError(error).mean),
    idealLoss: ideal_.mean,
    idealLossError: ideal_.error,
    modelLoss: model_.mean,
    modelLossError: model_.error,
  };
}

function meanAndError(values: Float64Array): { mean: number; error: number } {
  let mean = 0;
  for (const v of values) mean += v;
  mean /= values.length;
  let variance = 0;
  for (const v of values) variance += (v - mean) ** 2;
  variance /= values.length - 1;
  return { mean, error: Math.sqrt(variance / values.length) };
}

/**
 * How the measured order compares with the paper's, by the log-likelihood gap (higher is better; differences smaller
 * than twice their combined standard error are ties).
 */
export function likelihoodFindings(rows: readonly QualityRow[], steps: readonly number[]): string[] {
  const cell = (variant: string, S: number) => rows.find((r) => r.variant === variant && r.steps === S)!;
  const compare = (a: QualityRow, b: QualityRow) => {
    // both gaps share the exact set's error; the generated sets' own errors are what separates them
    const margin = 2 * Math.hypot(a.logLikelihoodGapError, b.logLikelihoodGapError);
    return a.logLikelihoodGap > b.logLikelihoodGap + margin
      ? "better"
      : a.logLikelihoodGap < b.logLikelihoodGap - margin
      ? "worse"
      : "tie";
  };
  const lines: string[] = [];
  let agree = 0;
  let reversed = 0;
  let ties = 0;
  const reversedPairs: string[] = [];
  for (const S of steps) {
    if (S >= 1000) continue;
    for (let i = 0; i + 1 < VARIANTS.length; i++) {
      const verdict = compare(cell(VARIANTS[i].variant, S), cell(VARIANTS[i + 1].variant, S));
      if (verdict === "better") agree++;
      else if (verdict === "worse") {
        reversed++;
        reversedPairs.push(`${VARIANTS[i].variant} vs ${VARIANTS[i + 1].variant} at S = ${S}`);
      } else ties++;
    }
  }
  lines.push(
    `By log-likelihood, of the ${agree + reversed + ties} neighbouring pairs along eta at S < 1000, ${agree} follow ` +
      `the paper's order, ${reversed} are reversed and ${ties} are ties within twice their standard error.` +
      (reversedPairs.length > 0 ? ` Reversed: ${reversedPairs.join("; ")}.` : ""),
  );
  const best = steps.map((S) => {
    const cells = VARIANTS.map(({ variant }) => cell(variant, S));
    const top = cells.reduce((a, b) => (b.logLikelihoodGap > a.logLikelihoodGap ? b : a));
    const worst = cells.reduce((a, b) => (b.logLikelihoodGap < a.logLikelihoodGap ? b : a));
    return `S = ${S}: best ${top.variant}, worst ${worst.variant}`;
  });
  lines.push(`Best and worst by log-likelihood: ${best.join("; ")}.`);
  return lines;
}

const fmt = (v: number, digits = 3) => (Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(digits));
const signed = (v: number) => `${v >= 0 ? "+" : ""}${fmt(v)}`;

/**
 * The Markdown report of a run.
 *
 * @param results what `benchLearned2d` measured
 * @param command the command line that produced it
 * @returns Markdown
 */
export function learned2dMarkdown(results: readonly Learned2dResult[], command: string): string {
  const out: string[] = [];
  out.push(`Command: \`${command}\`\n`);
  for (const r of results) {
    const steps = [...new Set(r.rows.map((row) => row.steps))];
    out.push(`### ${r.data}\n`);
    out.push(
      `MLP with ${r.parameters} parameters (lib/models/train2d.ts defaults: 3 hidden layers of 64, SiLU, Fourier features ` +
        `K = 4, timestep embedding of length 32), ${r.steps} steps of batch 256, Adam 2e-3 with cosine decay, EMA ` +
        `0.995, seed 0: ${r.trainSeconds.toFixed(1)} s of training.\n`,
    );
    out.push(
      `**(a) Where the network is wrong.** Loss per coordinate on fresh draws (EMA weights, t uniform over all ` +
        `1000 timesteps): ${fmt(r.overall.modelLoss, 4)} ± ${fmt(r.overall.modelLossError, 2)}, against the ideal ` +
        `loss of the exact eps*, ${fmt(r.overall.idealLoss, 4)} ± ${fmt(r.overall.idealLossError, 2)} ` +
        `(RMS of eps_theta - eps*: ${fmt(r.overall.rmsError)}). The training loss over the last 10% of the steps ` +
        `(raw weights, on the training batches) was ${fmt(r.finalTrainingLoss, 4)}.\n`,
    );
    out.push("| t | RMS of eps_theta - eps* | model loss | ideal loss | excess |");
    out.push("| --- | --- | --- | --- | --- |");
    for (const b of r.bands) {
      out.push(
        `| [${b.from}, ${b.to}) | ${fmt(b.rmsError)} | ${fmt(b.modelLoss, 4)} ± ${fmt(b.modelLossError, 2)} | ` +
          `${fmt(b.idealLoss, 4)} ± ${fmt(b.idealLossError, 2)} | ${signed(b.modelLoss - b.idealLoss)} |`,
      );
    }
    out.push("");
    out.push(
      `**(b) Table 1 analogue on the learned model.** ${r.samples} samples per cell, all from the same x_T (seed ` +
        `2020), \`clip_sample\` off. Log-likelihood gap: mean log p(x) of the samples minus that of ${r.samples} ` +
        `exact samples (${fmt(r.floor.exactLogLikelihood)} ± ${fmt(r.floor.exactLogLikelihoodError, 2)} nats), ` +
        `in nats per sample; 0 is perfect, higher is better.\n`,
    );
    out.push(`| variant | ${steps.map((S) => `S = ${S}`).join(" | ")} |`);
    out.push(`| --- | ${steps.map(() => "---").join(" | ")} |`);
    for (const { variant } of VARIANTS) {
      const cells = steps.map((S) => r.rows.find((row) => row.variant === variant && row.steps === S)!);
      out.push(
        `| ${variant} | ${
          cells.map((c) => `${signed(c.logLikelihoodGap)} ± ${fmt(c.logLikelihoodGapError, 2)}`).join(" | ")
        } |`,
      );
    }
    out.push("");
    out.push(
      `Sliced Wasserstein distance to the exact samples (128 directions, ± standard error over directions; lower is ` +
        `better). Noise floor (two exact sets of ${r.samples}): ${fmt(r.floor.swd)} ± ${fmt(r.floor.swdError, 2)}.\n`,
    );
    out.push(`| variant | ${steps.map((S) => `S = ${S}`).join(" | ")} |`);
    out.push(`| --- | ${steps.map(() => "---").join(" | ")} |`);
    for (const { variant } of VARIANTS) {
      const cells = steps.map((S) => r.rows.find((row) => row.variant === variant && row.steps === S)!);
      out.push(`| ${variant} | ${cells.map((c) => `${fmt(c.swd)} ± ${fmt(c.swdError, 2)}`).join(" | ")} |`);
    }
    out.push("");
    out.push(
      `Share of samples off the data: log p(x) below the 1st percentile of the exact samples' log p (exact samples: ` +
        `1%; ± binomial standard error). Unlike the mean log-likelihood, which a few far samples can dominate, ` +
        `this share is robust.\n`,
    );
    out.push(`| variant | ${steps.map((S) => `S = ${S}`).join(" | ")} |`);
    out.push(`| --- | ${steps.map(() => "---").join(" | ")} |`);
    const percent = (p: number) => `${(100 * p).toFixed(1)}%`;
    for (const { variant } of VARIANTS) {
      const cells = steps.map((S) => r.rows.find((row) => row.variant === variant && row.steps === S)!);
      out.push(
        `| ${variant} | ${
          cells.map((c) => `${percent(c.offData)} ± ${percent(Math.sqrt((c.offData * (1 - c.offData)) / r.samples))}`)
            .join(" | ")
        } |`,
      );
    }
    out.push("");
    for (const line of likelihoodFindings(r.rows, steps)) out.push(`- ${line}`);
    for (const line of orderingFindings(r.rows, r.floor.swd, steps).slice(0, 7)) out.push(`- ${line}`);
    out.push("");
  }
  out.push("The paper's Table 1 (CIFAR-10 FID, lower is better), for comparison:\n");
  out.push(`| variant | ${PAPER_TABLE_1.steps.map((S) => `S = ${S}`).join(" | ")} |`);
  out.push(`| --- | ${PAPER_TABLE_1.steps.map(() => "---").join(" | ")} |`);
  for (const row of PAPER_TABLE_1.rows) out.push(`| ${row.variant} | ${row.fid.join(" | ")} |`);
  return out.join("\n");
}

if (import.meta.main) {
  const argv = process.argv.slice(2);
  const value = (flag: string) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const data = value("--data")?.split(",");
  const steps = value("--steps") === undefined ? undefined : Number(value("--steps"));
  const samples = value("--samples") === undefined ? undefined : Number(value("--samples"));
  const t0 = performance.now();
  const results = await benchLearned2d({
    quick: argv.includes("--quick"),
    ...(data ? { data } : {}),
    ...(steps ? { steps } : {}),
    ...(samples ? { samples } : {}),
    ...(value("--save") ? { saveDir: value("--save") } : {}),
  });
  console.log(learned2dMarkdown(results, `bun bench/learned2d.ts ${argv.join(" ")}`.trim()));
  console.log(`\nTotal wall time: ${((performance.now() - t0) / 1000).toFixed(0)} s.`);
}
