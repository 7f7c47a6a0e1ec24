/**
 * Exact inversion against DDIM inversion: a Table 2 analogue of the DDIM paper (arXiv 2010.02502) for plain DDIM,
 * EDICT (Wallace et al. 2022, p = 0.93) and BDIA-DDIM (Zhang et al. 2023, gamma = 1 and 0.5), with the cost in model
 * calls and seconds, the float64-state limit, and the methods' sample quality as samplers with the Table 1 metrics of
 * bench/quality.ts (sliced Wasserstein distance to exact samples and the log-likelihood gap under the true mixture).
 *
 * Everything runs on `builtin:shapes32`, the exact eps* of a Gaussian mixture, so every error is the sampler's own.
 *
 * Standalone: `nice -n 15 npx bun bench/exact_inversion.ts [--quick] [--markdown]` (JSON on stdout, or the tables
 * of docs/benchmarks.md with `--markdown`).
 *
 * @module
 */
import process from "node:process";
import { builtinMixture } from "../lib/models/builtin_models.ts";
import { DDIMPipeline } from "../lib/pipelines/ddim_pipeline.ts";
import { decodeLatents, type InversionMethod, latentsFromNoise, reconstruct } from "../lib/pipelines/inversion.ts";
import { meanLogLikelihood, slicedWasserstein } from "../lib/math/metrics.ts";
import { drawShapes } from "../lib/models/shapes_dataset.ts";
import { Tensor } from "../lib/core/tensor.ts";
import { TorchGenerator } from "../lib/core/torch_generator.ts";
import type { BenchOptions } from "./run.ts";
import { PAPER_TABLE_2 } from "./reconstruction.ts";

/** One method with its parameter. */
interface Variant {
  label: string;
  method: InversionMethod;
  p?: number;
  gamma?: number;
}

const VARIANTS: Variant[] = [
  { label: "DDIM", method: "ddim" },
  { label: "EDICT p = 0.93", method: "edict", p: 0.93 },
  { label: "BDIA gamma = 1", method: "bdia", gamma: 1 },
  { label: "BDIA gamma = 0.5", method: "bdia", gamma: 0.5 },
];

/** One cell of the round-trip table. */
export interface RoundTripRow {
  variant: string;
  steps: number;
  /** Mean per-dimension MSE on [0, 1] over the rendered data images, and its standard error. */
  mseData: number;
  mseDataError: number;
  /** The same over exact draws of the mixture. */
  mseMixture: number;
  mseMixtureError: number;
  /** PSNR of the pooled MSE, dB (Infinity when it is 0). */
  psnr: number;
  /** Model calls per image: inversion + decoding. */
  modelCalls: number;
  /** Wall time of inversion and decoding for the whole batch, s. */
  seconds: number;
  /** Why the round trip failed (the state overflowed), when it did; the numbers are then NaN. */
  failure?: string;
}

const FAILED = {
  mseData: NaN,
  mseDataError: NaN,
  mseMixture: NaN,
  mseMixtureError: NaN,
  psnr: NaN,
  modelCalls: NaN,
};

async function attempt<T>(run: () => Promise<T>): Promise<T | Error> {
  try {
    return await run();
  } catch (error) {
    return error as Error;
  }
}

/** One cell of the float64 table. */
export interface PrecisionRow {
  variant: string;
  steps: number;
  /** Largest |x_0' - x_0| over all pixels with a float32 state, and with a float64 state. */
  maxErrorFloat32: number;
  maxErrorFloat64: number;
}

/** One cell of the quality table. */
export interface SamplerRow {
  variant: string;
  steps: number;
  swd: number;
  swdError: number;
  logLikelihoodGap: number;
  logLikelihoodGapError: number;
  modelCalls: number;
  seconds: number;
}

/** Everything `benchExactInversion` measured. */
export interface ExactInversionResult {
  model: string;
  images: { data: number; mixture: number };
  roundTrips: RoundTripRow[];
  precision: PrecisionRow[];
  quality: {
    samples: number;
    projections: number;
    seed: number;
    floorSwd: number;
    floorSwdError: number;
    rows: SamplerRow[];
  };
  paper: Readonly<Record<number, number>>;
  totalSeconds: number;
}

/**
 * Run the comparison.
 *
 * @param options `quick` for 8 + 8 images and 48 samples (full: 16 + 16 images, 128 samples as bench/quality.ts)
 * @returns the round-trip table, the float64 table and the sampler quality table
 */
export async function benchExactInversion(options: BenchOptions = {}): Promise<ExactInversionResult> {
  const log = options.log ?? ((line: string) => console.error(line));
  const quick = options.quick ?? false;
  const started = performance.now();
  const model = "builtin:shapes32";
  const pipe = await DDIMPipeline.fromPretrained(model);
  const mixture = builtinMixture(model);
  const perSet = quick ? 8 : 16;
  // 1. the images: rendered by the shapes data set (where DDIM's round trip fails) and exact mixture draws
  const data = drawShapes(perSet, { seed: 8 }).images;
  const draws = mixture.sample(perSet, new TorchGenerator(7)).samples;
  const batch = new Float32Array(data.size + draws.size);
  batch.set(data.data, 0);
  batch.set(draws.data, data.size);
  const images = new Tensor(batch, [2 * perSet, 3, 32, 32]);
  const roundTrips: RoundTripRow[] = [];
  for (const S of [10, 20, 50, 100]) {
    for (const variant of VARIANTS) {
      const t0 = performance.now();
      const result = await attempt(() =>
        reconstruct(pipe, images, {
          numInferenceSteps: S,
          method: variant.method,
          ...(variant.p === undefined ? {} : { p: variant.p }),
          ...(variant.gamma === undefined ? {} : { gamma: variant.gamma }),
        })
      );
      const seconds = (performance.now() - t0) / 1000;
      if (result instanceof Error) {
        // BDIA with gamma < 1 can overflow: its inversion multiplies rounding errors by about gamma^-S
        roundTrips.push({ variant: variant.label, steps: S, seconds, failure: result.message, ...FAILED });
        log(`exact inversion: ${variant.label}, S = ${S}: failed: ${result.message}`);
        continue;
      }
      const onData = summary(result.msePerImage.slice(0, perSet));
      const onDraws = summary(result.msePerImage.slice(perSet));
      roundTrips.push({
        variant: variant.label,
        steps: S,
        mseData: onData.mean,
        mseDataError: onData.error,
        mseMixture: onDraws.mean,
        mseMixtureError: onDraws.error,
        psnr: result.psnr,
        modelCalls: result.modelCalls + result.decodeModelCalls,
        seconds,
      });
      log(
        `exact inversion: ${variant.label}, S = ${S}: MSE data ${onData.mean.toExponential(2)}, mixture ` +
          `${onDraws.mean.toExponential(2)} (${seconds.toFixed(1)} s)`,
      );
    }
  }
  // 2. float32 against float64 state on the data images
  const precision: PrecisionRow[] = [];
  for (const S of [10, 50]) {
    for (const variant of VARIANTS.filter((v) => v.method !== "ddim")) {
      const errors = [];
      for (const state of ["float32", "float64"] as const) {
        const result = await attempt(() =>
          reconstruct(pipe, data, {
            numInferenceSteps: S,
            method: variant.method,
            precision: state,
            ...(variant.p === undefined ? {} : { p: variant.p }),
            ...(variant.gamma === undefined ? {} : { gamma: variant.gamma }),
          })
        );
        if (result instanceof Error) {
          errors.push(Infinity);
          continue;
        }
        let worst = 0;
        for (let k = 0; k < data.size; k++) {
          worst = Math.max(worst, Math.abs(result.reconstructionState[k] - data.data[k]));
        }
        errors.push(worst);
      }
      precision.push({ variant: variant.label, steps: S, maxErrorFloat32: errors[0], maxErrorFloat64: errors[1] });
      log(
        `exact inversion: ${variant.label}, S = ${S}: max error float32 ${errors[0].toExponential(2)}, float64 ` +
          `${errors[1].toExponential(2)}`,
      );
    }
  }
  // 3. the methods as samplers: bench/quality.ts's metrics, seed and sample count, from the same x_T
  const samples = quick ? 48 : 128;
  const projections = quick ? 64 : 128;
  const seed = 2020;
  const reference = mixture.sample(samples, new TorchGenerator(seed + 1)).samples;
  const second = mixture.sample(samples, new TorchGenerator(seed + 2)).samples;
  const swdOptions = { projections, seed: seed + 3 };
  const floor = slicedWasserstein(second, reference, swdOptions);
  const logDensity = (x: Tensor) => mixture.logDensity(x);
  const exactLikelihood = meanLogLikelihood(reference, logDensity);
  const xT = new TorchGenerator(seed).randn([samples, 3, 32, 32]);
  const rows: SamplerRow[] = [];
  for (const variant of VARIANTS) {
    for (const S of [10, 20, 50]) {
      const t0 = performance.now();
      const { samples: generated, modelCalls } = await decodeLatents(
        pipe,
        latentsFromNoise(xT, {
          numInferenceSteps: S,
          method: variant.method,
          ...(variant.p === undefined ? {} : { p: variant.p }),
          ...(variant.gamma === undefined ? {} : { gamma: variant.gamma }),
        }),
      );
      const flat = generated.reshape([samples, generated.size / samples]);
      const swd = slicedWasserstein(flat, reference, swdOptions);
      const likelihood = meanLogLikelihood(flat, logDensity);
      const seconds = (performance.now() - t0) / 1000;
      rows.push({
        variant: variant.label,
        steps: S,
        swd: swd.distance,
        swdError: swd.standardError,
        logLikelihoodGap: likelihood.perDimension - exactLikelihood.perDimension,
        logLikelihoodGapError: Math.hypot(likelihood.standardError, exactLikelihood.standardError) /
          exactLikelihood.dimensions,
        modelCalls,
        seconds,
      });
      log(
        `exact inversion: sampling with ${variant.label}, S = ${S}: SWD ${swd.distance.toPrecision(3)} ` +
          `(${seconds.toFixed(1)} s)`,
      );
    }
  }
  return {
    model,
    images: { data: perSet, mixture: perSet },
    roundTrips,
    precision,
    quality: { samples, projections, seed, floorSwd: floor.distance, floorSwdError: floor.standardError, rows },
    paper: PAPER_TABLE_2,
    totalSeconds: (performance.now() - started) / 1000,
  };
}

function summary(values: readonly number[]): { mean: number; error: number } {
  const n = values.length;
  const mean = values.reduce((s, v) => s + v, 0) / n;
  const variance = n > 1 ? values.reduce((s, v) => s + (v - mean) ** 2, 0) / (n - 1) : 0;
  return { mean, error: Math.sqrt(variance / n) };
}

const number = (v: number) =>
  !Number.isFinite(v)
    ? "overflow"
    : v === 0
    ? "0"
    : Math.abs(v) >= 0.01 && Math.abs(v) < 1000
    ? v.toPrecision(3)
    : v.toExponential(1);

/**
 * The result as the markdown tables of docs/benchmarks.md.
 *
 * @param result what `benchExactInversion` returned
 * @returns markdown
 */
export function exactInversionMarkdown(result: ExactInversionResult): string {
  const steps = [10, 20, 50, 100];
  const cell = (variant: string, S: number) => result.roundTrips.find((r) => r.variant === variant && r.steps === S)!;
  const lines: string[] = [];
  const header = (first: string, columns: readonly (string | number)[]) => {
    lines.push(`| ${first} | ${columns.join(" | ")} |`, `| --- | ${columns.map(() => "---").join(" | ")} |`);
  };
  header("MSE on [0, 1], rendered data images", steps.map((S) => `S = ${S}`));
  for (const { label } of VARIANTS) {
    lines.push(
      `| ${label} | ${
        steps.map((S) => `${number(cell(label, S).mseData)} ± ${number(cell(label, S).mseDataError)}`).join(" | ")
      } |`,
    );
  }
  lines.push(`| paper, DDIM, CIFAR-10 (Table 2) | ${steps.map((S) => result.paper[S]).join(" | ")} |`, "");
  header("MSE on [0, 1], exact mixture draws", steps.map((S) => `S = ${S}`));
  for (const { label } of VARIANTS) {
    lines.push(
      `| ${label} | ${
        steps.map((S) => `${number(cell(label, S).mseMixture)} ± ${number(cell(label, S).mseMixtureError)}`).join(" | ")
      } |`,
    );
  }
  lines.push("");
  header("PSNR (dB), all images", steps.map((S) => `S = ${S}`));
  for (const { label } of VARIANTS) {
    lines.push(
      `| ${label} | ${
        steps.map((S) => (cell(label, S).failure
          ? "overflow"
          : Number.isFinite(cell(label, S).psnr)
          ? cell(label, S).psnr.toFixed(1)
          : "inf")
        ).join(" | ")
      } |`,
    );
  }
  lines.push("");
  header("cost: model calls per image (invert + decode), seconds for the batch", steps.map((S) => `S = ${S}`));
  for (const { label } of VARIANTS) {
    lines.push(
      `| ${label} | ${
        steps.map((S) =>
          cell(label, S).failure ? "overflow" : `${cell(label, S).modelCalls}, ${cell(label, S).seconds.toFixed(2)} s`
        ).join(" | ")
      } |`,
    );
  }
  lines.push("");
  header("largest pixel error, float32 state / float64 state", ["S = 10", "S = 50"]);
  for (const variant of [...new Set(result.precision.map((r) => r.variant))]) {
    const row = [10, 50].map((S) => result.precision.find((r) => r.variant === variant && r.steps === S)!);
    lines.push(
      `| ${variant} | ${row.map((r) => `${number(r.maxErrorFloat32)} / ${number(r.maxErrorFloat64)}`).join(" | ")} |`,
    );
  }
  lines.push("");
  const q = result.quality;
  header(
    `as samplers: SWD to exact samples (noise floor ${number(q.floorSwd)} ± ${
      number(q.floorSwdError)
    }); log-likelihood gap (nats/dim); model calls`,
    ["S = 10", "S = 20", "S = 50"],
  );
  for (const { label } of VARIANTS) {
    const row = [10, 20, 50].map((S) => q.rows.find((r) => r.variant === label && r.steps === S)!);
    lines.push(
      `| ${label} | ${
        row.map((r) =>
          `${number(r.swd)} ± ${number(r.swdError)}; ${r.logLikelihoodGap >= 0 ? "+" : ""}${
            r.logLikelihoodGap.toFixed(3)
          } ± ${number(r.logLikelihoodGapError)}; ${r.modelCalls}`
        ).join(" | ")
      } |`,
    );
  }
  lines.push("", `Total time ${result.totalSeconds.toFixed(0)} s.`);
  return lines.join("\n");
}

if (import.meta.main) {
  const result = await benchExactInversion({ quick: process.argv.includes("--quick") });
  console.log(process.argv.includes("--markdown") ? exactInversionMarkdown(result) : JSON.stringify(result, null, 2));
}
