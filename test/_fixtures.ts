/**
 * Loader for `test/fixtures/diffusers-schedulers.json` (outputs of diffusers' own schedulers, PyTorch float32)
 * and the stand-in model, starting sample and variance noise its README defines. Shared by the scheduler tests.
 *
 * - sample[i] = 2 i / n - 1 (i the flat index, n the element count)
 * - model(x, t) = 0.9 x - 0.1 sin(3 x) + t / 1500, elementwise
 * - noise_at(k)[i] = 0.9 cos(1.37 i + 0.577 k), the variance noise of the k-th step of a loop
 * - for `learned_range` variance the model output is model(x, t) concatenated on dim 1 with tanh(0.5 x + t / 1000)
 *
 * Everything is computed in float64 and cast to float32, as the fixture's generator did.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import { type DenoisingModel, modelFromFunction } from "../lib/core/model.ts";
import { Tensor } from "../lib/core/tensor.ts";
import { TorchGenerator } from "../lib/core/torch_generator.ts";

/** A `timesteps` entry: `set_timesteps(n)` of one scheduler and config, or the error diffusers raised. */
export interface TimestepsCase {
  scheduler: "ddim" | "ddpm" | "ddim_inverse";
  config: Record<string, unknown>;
  n: number;
  timesteps?: number[];
  error?: string;
}

/** A full sampling loop run with diffusers. */
export interface LoopCase {
  scheduler: "ddim" | "ddpm" | "ddim_inverse";
  config: Record<string, unknown>;
  n: number;
  eta: number | null;
  use_clipped_model_output: boolean | null;
  final: number[];
  pred_original_sample_sums?: number[];
  learned_extra_channels?: string | null;
}

/** The whole fixture file. */
export interface SchedulerFixtures {
  shape: number[];
  sample: number[];
  notes: string;
  source: string;
  timesteps: TimestepsCase[];
  alphas_cumprod: { config: { beta_schedule: string; rescale_betas_zero_snr: boolean }; alphas_cumprod: number[] }[];
  loops: LoopCase[];
  add_noise: { timestep: number; result: number[] }[];
  torch_randn: { seed: number; draws: number[][]; values: number[][] }[];
  seeded_loops: { scheduler: "ddim" | "ddpm"; seed: number; n: number; eta: number | null; final: number[] }[];
}

let cached: SchedulerFixtures | undefined;

/** The parsed fixture file (read once). */
export function schedulerFixtures(): SchedulerFixtures {
  cached ??= JSON.parse(
    readFileSync(new URL("./fixtures/diffusers-schedulers.json", import.meta.url), "utf8"),
  ) as SchedulerFixtures;
  return cached;
}

/** The fixture's starting sample: sample[i] = 2 i / n - 1, shaped `shape` (default the fixture's [2, 3, 4, 4]). */
export function fixtureSample(shape: readonly number[] = schedulerFixtures().shape): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return new Tensor(Float32Array.from({ length: n }, (_, i) => 2 * i / n - 1), shape);
}

/** The stand-in model: model(x, t) = 0.9 x - 0.1 sin(3 x) + t / 1500, elementwise. */
export function standInModel(x: Tensor, t: number): Tensor {
  return new Tensor(x.data.map((v) => 0.9 * v - 0.1 * Math.sin(3 * v) + t / 1500), x.shape);
}

/**
 * The stand-in model as a `DenoisingModel` (what pipelines and sampling loops take), for 3-channel images of side
 * `sampleSize` (default 4).
 */
export function standInUNet(sampleSize = 4): DenoisingModel {
  return modelFromFunction((x, t) => standInModel(x, t as number), { sampleSize, inChannels: 3 });
}

/**
 * A model that predicts zeros for 3-channel images of side `sampleSize` and counts its calls, for tests that check bad
 * input is refused before the model runs.
 */
export function countingZeroModel(sampleSize: number): { unet: DenoisingModel; calls: () => number } {
  let calls = 0;
  const unet = modelFromFunction((x) => {
    calls++;
    return Tensor.zeros(x.shape);
  }, { sampleSize, inChannels: 3 });
  return { unet, calls: () => calls };
}

/** An image-like tensor in (-1, 1): tanh of `torch.randn(shape)` drawn with `seed`. */
export function tanhImage(seed: number, shape: readonly number[]): Tensor {
  return new Tensor(new TorchGenerator(seed).randn(shape).data.map(Math.tanh), shape);
}

/** The stand-in model with a learned variance: model(x, t) and tanh(0.5 x + t / 1000) concatenated on dim 1. */
export function standInModelWithVariance(x: Tensor, t: number): Tensor {
  const [batch, channels, ...rest] = x.shape;
  const itemSize = x.size / batch;
  const eps = standInModel(x, t).data;
  const out = new Float32Array(2 * x.size);
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < itemSize; i++) {
      const v = x.data[b * itemSize + i];
      out[2 * b * itemSize + i] = eps[b * itemSize + i];
      out[2 * b * itemSize + itemSize + i] = Math.tanh(0.5 * v + t / 1000);
    }
  }
  return new Tensor(out, [batch, 2 * channels, ...rest]);
}

/** The variance noise of the k-th step of a loop: noise_at(k)[i] = 0.9 cos(1.37 i + 0.577 k). */
export function noiseAt(k: number, shape: readonly number[] = schedulerFixtures().shape): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return new Tensor(Float32Array.from({ length: n }, (_, i) => 0.9 * Math.cos(1.37 * i + 0.577 * k)), shape);
}

/** The largest absolute difference between two equally long lists. */
export function maxAbsDiff(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) {
    throw new RangeError(`lengths differ: ${actual.length} vs ${expected.length}`);
  }
  let worst = 0;
  for (let i = 0; i < actual.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    if (!(d <= worst)) worst = d; // NaN propagates
  }
  return worst;
}

/** A short label for a fixture case, for test names. */
export function caseLabel(
  c: { scheduler: string; config: Record<string, unknown>; n: number; eta?: number | null },
): string {
  const eta = c.eta === undefined || c.eta === null ? "" : ` eta=${c.eta}`;
  return `${c.scheduler} n=${c.n}${eta} ${JSON.stringify(c.config)}`;
}
