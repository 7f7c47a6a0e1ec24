/**
 * Table 1 analogue of the DDIM paper (arXiv 2010.02502): sample quality against the number of steps S and eta, plus
 * DDPM's larger variance sigma-hat (diffusers' `fixed_large`), on the embedded image Gaussian mixture
 * (`builtin:shapes32`). The model's noise predictor is exact, so the metrics are exact too: the sliced Wasserstein
 * distance to fresh exact samples (with its own noise floor) and the mean log-likelihood under the true mixture.
 *
 * Standalone: `bun bench/quality.ts [--quick]`.
 *
 * @module
 */
import process from "node:process";
import { builtinCheckpointDir, builtinMixture } from "../lib/models/builtin_models.ts";
import { DDIMPipeline } from "../lib/pipelines/ddim_pipeline.ts";
import { DDPMPipeline } from "../lib/pipelines/ddpm_pipeline.ts";
import { DDPMScheduler } from "../lib/schedulers/ddpm.ts";
import { meanLogLikelihood, slicedWasserstein } from "../lib/math/metrics.ts";
import { configOf } from "../lib/pipelines/sampling.ts";
import { TorchGenerator } from "../lib/core/torch_generator.ts";
import type { Tensor } from "../lib/core/tensor.ts";
import type { BenchOptions } from "./run.ts";

/** One cell of the table: one variant at one S. */
export interface QualityRow {
  variant: string;
  /** eta for DDIM rows; null for the sigma-hat (DDPM `fixed_large`) row. */
  eta: number | null;
  steps: number;
  swd: number;
  swdError: number;
  /** E_gen[log p] - E_exact[log p], nats per dimension. */
  logLikelihoodGap: number;
  logLikelihoodGapError: number;
  seconds: number;
}

/** Everything `benchQuality` measured. */
export interface QualityResult {
  description: string;
  model: string;
  dimensions: number;
  samples: number;
  projections: number;
  seed: number;
  steps: number[];
  rows: QualityRow[];
  floor: { swd: number; swdError: number; exactLogLikelihoodPerDim: number; exactLogLikelihoodError: number };
  paper: { steps: number[]; rows: { variant: string; fid: number[] }[] };
  ordering: string[];
}

/** The DDIM paper's Table 1, CIFAR-10 FID (arXiv 2010.02502, Table 1). */
export const PAPER_TABLE_1 = {
  steps: [10, 20, 50, 100, 1000],
  rows: [
    { variant: "eta = 0", fid: [13.36, 6.84, 4.67, 4.16, 4.04] },
    { variant: "eta = 0.2", fid: [14.04, 7.11, 4.77, 4.25, 4.09] },
    { variant: "eta = 0.5", fid: [16.66, 8.35, 5.25, 4.46, 4.29] },
    { variant: "eta = 1", fid: [41.07, 18.36, 8.01, 5.78, 4.73] },
    { variant: "sigma-hat", fid: [367.43, 133.37, 32.72, 9.99, 3.17] },
  ],
};

const VARIANTS: { variant: string; eta: number | null }[] = [
  { variant: "eta = 0", eta: 0 },
  { variant: "eta = 0.2", eta: 0.2 },
  { variant: "eta = 0.5", eta: 0.5 },
  { variant: "eta = 1", eta: 1 },
  { variant: "sigma-hat", eta: null },
];

/** Options of `benchQuality`: the model and sizes, for running the same table on a learned model. */
export interface QualityOptions extends BenchOptions {
  /** The model (default `builtin:shapes32`); its exact law is `builtinMixture(model)`. */
  model?: string;
  /** Samples per cell (default 128, quick 96). */
  samples?: number;
  /** The step counts S (default 10, 20, 50, 100, 1000; quick 10, 20, 50). */
  steps?: number[];
  /** Only these variants at the largest S (default: all), to bound the cost on a slow model. */
  variantsAtLargestS?: string[];
  /**
   * Clip the predicted x0 to [-1, 1] at every step (default false: the pure process, right for an exact model; a
   * trained checkpoint is sampled with its own scheduler config's `clip_sample`, as diffusers does).
   */
  clipSample?: boolean;
}

/**
 * Run the Table 1 analogue.
 *
 * @param options `quick` for S = 10, 20, 50 and 96 samples (full: S = 10, 20, 50, 100, 1000 and 128
 *   samples: about 0.7 ms per image and step, so roughly 9 minutes on a 2-core machine); `model`, `samples`,
 *   `steps` and `variantsAtLargestS` to run it on another builtin model
 * @returns every cell, the noise floor, the paper's table and the ordering findings
 */
export async function benchQuality(options: QualityOptions = {}): Promise<QualityResult> {
  const log = options.log ?? ((line: string) => console.error(line));
  const quick = options.quick ?? false;
  const steps = options.steps ?? (quick ? [10, 20, 50] : [10, 20, 50, 100, 1000]);
  const samples = options.samples ?? (quick ? 96 : 128);
  const projections = quick ? 64 : 128;
  const seed = 2020;
  const model = options.model ?? "builtin:shapes32";
  const exact = builtinCheckpointDir(model) === undefined;
  const clipSample = options.clipSample ?? false;
  const ddim = await DDIMPipeline.fromPretrained(model);
  const mixture = builtinMixture(model);
  const ddpm = new DDPMPipeline({
    unet: ddim.unet,
    scheduler: DDPMScheduler.fromConfig({ ...configOf(ddim.scheduler), variance_type: "fixed_large" }),
  });
  const logDensity = (x: Tensor) => mixture.logDensity(x);
  const flat = (x: Tensor) => x.reshape([x.shape[0], x.size / x.shape[0]]);
  // 1. two independent exact sample sets: one is the reference, the other measures the noise floor
  const reference = mixture.sample(samples, new TorchGenerator(seed + 1)).samples;
  const second = mixture.sample(samples, new TorchGenerator(seed + 2)).samples;
  const swdOptions = { projections, seed: seed + 3 };
  const floorSwd = slicedWasserstein(second, reference, swdOptions);
  const exactLogLikelihood = meanLogLikelihood(reference, logDensity);
  const dimensions = exactLogLikelihood.dimensions;
  log(`quality: noise floor SWD ${floorSwd.distance.toPrecision(3)} with ${samples} samples`);
  const rows: QualityRow[] = [];
  const largestS = Math.max(...steps);
  for (const { variant, eta } of VARIANTS) {
    for (const S of steps) {
      if (S === largestS && options.variantsAtLargestS && !options.variantsAtLargestS.includes(variant)) continue;
      const t0 = performance.now();
      // 2. every variant starts from the same x_T (drawn first from the same seed); clipping off: the model is exact
      const run = eta === null
        ? await ddpm.sample({ numInferenceSteps: S, seed, batchSize: samples, clipSample })
        : await ddim.sample({ numInferenceSteps: S, eta, seed, batchSize: samples, clipSample });
      const generated = flat(run.samples);
      const swd = slicedWasserstein(generated, reference, swdOptions);
      const likelihood = meanLogLikelihood(generated, logDensity);
      const seconds = (performance.now() - t0) / 1000;
      rows.push({
        variant,
        eta,
        steps: S,
        swd: swd.distance,
        swdError: swd.standardError,
        logLikelihoodGap: likelihood.perDimension - exactLogLikelihood.perDimension,
        logLikelihoodGapError: Math.hypot(likelihood.standardError, exactLogLikelihood.standardError) / dimensions,
        seconds,
      });
      log(`quality: ${variant}, S = ${S}: SWD ${swd.distance.toPrecision(3)} (${seconds.toFixed(1)} s)`);
    }
  }
  const floor = {
    swd: floorSwd.distance,
    swdError: floorSwd.standardError,
    exactLogLikelihoodPerDim: exactLogLikelihood.perDimension,
    exactLogLikelihoodError: exactLogLikelihood.standardError / dimensions,
  };
  return {
    description: "Each cell draws samples with one variant at one S from the same starting noise x_T and compares " +
      "them with exact samples of the mixture the model denoises (" +
      (exact
        ? "the model is the exact eps*, so every difference is the sampler's own"
        : "the model is a trained network, so a difference combines the sampler's error and the network's") +
      "). The sliced Wasserstein directions are uniform on the sphere; they " +
      "see left-over noise well but the mixture's low-dimensional structure only weakly, so the log-likelihood " +
      "gap is the finer measure here. The paper uses FID on CIFAR-10; FID needs a trained Inception " +
      "network, while here the true law is known. `clip_sample` is " +
      (clipSample
        ? "on for every variant (the checkpoint's scheduler config; without it the network's error at large t, " +
          "amplified by 1 / sqrt(alphaBar_t) in the predicted x0, throws the samples far outside [-1, 1])."
        : "off for every variant."),
    model,
    dimensions,
    samples,
    projections,
    seed,
    steps,
    rows,
    floor,
    paper: PAPER_TABLE_1,
    ordering: orderingFindings(rows, floor.swd, steps, exact),
  };
}

/**
 * Compare the measured ordering with the paper's, in sentences: along S for each variant, along eta at each S, and
 * at the largest S. Differences smaller than twice their combined standard error over directions are ties.
 */
export function orderingFindings(
  rows: readonly QualityRow[],
  floorSwd: number,
  steps: readonly number[],
  exact = true,
): string[] {
  const cell = (variant: string, S: number) => rows.find((r) => r.variant === variant && r.steps === S);
  const compare = (a: QualityRow, b: QualityRow) => {
    const margin = 2 * Math.hypot(a.swdError, b.swdError);
    return a.swd < b.swd - margin ? "better" : a.swd > b.swd + margin ? "worse" : "tie";
  };
  const lines: string[] = [];
  // 1. more steps help every variant (paper: FID falls along every row)
  for (const { variant } of VARIANTS) {
    const cells = steps.map((S) => cell(variant, S)).filter((r): r is QualityRow => r !== undefined);
    const reversals = cells.slice(1).filter((r, i) => compare(r, cells[i]) === "worse");
    const atFloor = cells.filter((r) => r.swd < 1.5 * floorSwd).map((r) => r.steps);
    lines.push(
      `${variant}: ` +
        (reversals.length === 0
          ? "the distance never rises with S (as in the paper)"
          : `the distance rises at S = ${reversals.map((r) => r.steps).join(", ")} (unlike the paper)`) +
        (atFloor.length > 0 ? `; within 1.5x the noise floor from S = ${atFloor[0]}` : "") +
        ".",
    );
  }
  // 2. at each S, eta = 0 < 0.2 < 0.5 < 1 < sigma-hat (paper, for S <= 100)
  const orders: string[] = [];
  let agree = 0;
  let reversed = 0;
  let ties = 0;
  const reversedPairs: string[] = [];
  for (const S of steps) {
    const cells = VARIANTS.map(({ variant }) => cell(variant, S)).filter((r): r is QualityRow => r !== undefined);
    orders.push(`S = ${S}: ${[...cells].sort((a, b) => a.swd - b.swd).map((r) => r.variant).join(" < ")}`);
    if (S >= 1000) continue;
    for (let i = 0; i + 1 < cells.length; i++) {
      const verdict = compare(cells[i], cells[i + 1]);
      if (verdict === "better") agree++;
      else if (verdict === "worse") {
        reversed++;
        reversedPairs.push(`${cells[i].variant} vs ${cells[i + 1].variant} at S = ${S}`);
      } else ties++;
    }
  }
  lines.push(
    `Along eta (paper: eta = 0 best, then 0.2, 0.5, 1, sigma-hat worst, for every S up to 100): of the ` +
      `${agree + reversed + ties} neighbouring pairs at S < 1000, ${agree} follow the paper's order, ${reversed} ` +
      `are reversed and ${ties} are ties within twice their standard error.` +
      (reversedPairs.length > 0 ? ` Reversed: ${reversedPairs.join("; ")}.` : ""),
  );
  lines.push(`Measured order (lowest distance first): ${orders.join("; ")}.`);
  const byGap: string[] = [];
  for (const S of steps) {
    const cells = VARIANTS.map(({ variant }) => cell(variant, S)).filter((r): r is QualityRow => r !== undefined);
    byGap.push(
      `S = ${S}: ${
        [...cells].sort((a, b) => Math.abs(a.logLikelihoodGap) - Math.abs(b.logLikelihoodGap))
          .map((r) => `${r.variant} (${r.logLikelihoodGap >= 0 ? "+" : ""}${r.logLikelihoodGap.toFixed(3)})`)
          .join(" < ")
      }`,
    );
  }
  lines.push(
    `Order by the size of the log-likelihood gap (smallest first, signed gap in nats per dimension): ` +
      `${byGap.join("; ")}. A positive gap means the samples are more concentrated than the data (the ` +
      "last DDIM step, for every eta, returns the predicted x_0 = E[x_0 | x_tau_1] with no noise, which lacks " +
      "part of the data's fine isotropic variance until tau_1 is close to 0); a negative gap means left-over noise, which is what sigma-hat's large " +
      "variance leaves at small S and why it is worst there, as in the paper.",
  );
  // 3. the largest S: the paper's sigma-hat wins at S = 1000 (3.17 against 4.04)
  const last = steps[steps.length - 1];
  if (last >= 1000) {
    const cells = VARIANTS.map(({ variant }) => cell(variant, last)).filter((r): r is QualityRow => r !== undefined);
    const spread = Math.max(...cells.map((r) => r.swd)) - Math.min(...cells.map((r) => r.swd));
    const allNearFloor = cells.every((r) => r.swd < 1.5 * floorSwd);
    lines.push(
      `At S = ${last} the paper ranks sigma-hat first (FID 3.17 against 4.04 for eta = 0). Here the variants ` +
        `span ${spread.toPrecision(2)} in distance` +
        (allNearFloor ? `, all within 1.5x the noise floor (${floorSwd.toPrecision(3)})` : "") +
        (exact
          ? ". With the exact eps* every variant converges to the data law as S grows, so no variant can win at " +
            "large S by more than sampling noise; the paper's advantage of sigma-hat at S = 1000 comes from its " +
            "trained network's errors (large noise injection masks them), which an exact model does not have."
          : `. Measured order at S = ${last} (lowest distance first): ` +
            [...cells].sort((a, b) => a.swd - b.swd).map((r) => r.variant).join(" < ") + "."),
    );
  } else {
    lines.push(`This run stops at S = ${last}; the S = 1000 comparison needs the full run.`);
  }
  return lines;
}

if (import.meta.main) {
  const result = await benchQuality({ quick: process.argv.includes("--quick") });
  console.log(JSON.stringify(result, null, 2));
}
