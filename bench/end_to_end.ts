/**
 * End-to-end sampling speed: images per second for DDIM with 50 steps and DDPM with 1000 steps, at batch 1 and 16,
 * on the google/ddpm-cifar10-32 UNet architecture (random weights, which cost the same as trained ones) and on the
 * embedded exact model `builtin:shapes32`. Each figure covers the whole pipeline: drawing x_T, the model, the
 * scheduler step and its noise.
 *
 * A cifar10-32 forward takes about a third of a second at batch 1 on a 2-core machine, so a 1000-step run would take
 * minutes to hours; for that architecture only the first steps of the real schedule are timed and the rest is
 * extrapolated at the steady per-step time (the table says how many steps were timed). The embedded model's runs
 * are timed in full (in the full mode).
 *
 * Standalone: `bun bench/end_to_end.ts [--quick]`.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import process from "node:process";
import { DDIMPipeline } from "../lib/pipelines/ddim_pipeline.ts";
import { DDIMScheduler } from "../lib/schedulers/ddim.ts";
import { DDPMPipeline } from "../lib/pipelines/ddpm_pipeline.ts";
import { DDPMScheduler } from "../lib/schedulers/ddpm.ts";
import type { DenoisingModel } from "../lib/core/model.ts";
import { configOf } from "../lib/pipelines/sampling.ts";
import { Tensor } from "../lib/core/tensor.ts";
import { OnnxUNet } from "../lib/models/onnx_unet.ts";
import { parseUNetConfig } from "../lib/models/unet_config.ts";
import { compileUNet, type UNetWeights } from "../lib/models/unet_onnx.ts";
import type { BenchOptions } from "./run.ts";

/** One timed configuration. */
export interface EndToEndRow {
  model: string;
  sampler: string;
  batch: number;
  /** Steps of the full run the figure is for. */
  steps: number;
  /** Steps actually run and timed (the rest extrapolated at `secondsPerStep`). */
  timedSteps: number;
  /** Steady-state seconds per step (model + scheduler), after the first step. */
  secondsPerStep: number;
  /** Seconds for the whole run: measured when `timedSteps === steps`, else first step + (steps - 1) x per step. */
  seconds: number;
  /** batch / seconds. */
  imagesPerSecond: number;
}

/** Everything `benchEndToEnd` measured. */
export interface EndToEndResult {
  description: string;
  rows: EndToEndRow[];
  notes: string[];
}

/** Stops a sampling loop early from inside `onStep`. */
class EnoughSteps extends Error {}

/**
 * Weights for any UNet2DModel config: uniform in +-sqrt(3 / fan-in) for matrices and kernels, 1 for normalisation
 * scales, 0 for biases; deterministic (a 32-bit LCG), cheap to make, and numerically tame (no denormals or NaNs).
 */
function randomWeights(seed: number): UNetWeights {
  let state = seed >>> 0;
  return {
    take(name, shape) {
      const size = shape.reduce((a, b) => a * b, 1);
      const out = new Float32Array(size);
      if (shape.length === 1) {
        if (name.endsWith(".weight")) out.fill(1);
        return out;
      }
      const fanIn = size / shape[0];
      const bound = Math.sqrt(3 / fanIn);
      for (let i = 0; i < size; i++) {
        state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
        out[i] = (state / 2 ** 32 * 2 - 1) * bound;
      }
      return out;
    },
  };
}

async function cifarArchitecture(): Promise<DenoisingModel> {
  const path = new URL("../test/fixtures/unet/configs/google-ddpm-cifar10-32.json", import.meta.url);
  const config = parseUNetConfig(JSON.parse(readFileSync(path, "utf8")), "google-ddpm-cifar10-32 config");
  const bytes = compileUNet(config, randomWeights(32));
  return await OnnxUNet.fromBytes(bytes, { sampleSize: 32, inChannels: 3, outChannels: 3 });
}

/** Time `timedSteps` steps of a run of `steps` steps (all of them when equal). */
async function timeRun(
  run: (onStep: () => void) => Promise<unknown>,
  steps: number,
  timedSteps: number,
): Promise<{ seconds: number; secondsPerStep: number }> {
  const marks: number[] = [];
  const t0 = performance.now();
  try {
    await run(() => {
      marks.push(performance.now());
      if (marks.length >= timedSteps && timedSteps < steps) throw new EnoughSteps();
    });
  } catch (error) {
    if (!(error instanceof EnoughSteps)) throw error;
  }
  const first = marks[0] - t0;
  const secondsPerStep = marks.length > 1
    ? (marks[marks.length - 1] - marks[0]) / (marks.length - 1) / 1000
    : first / 1000;
  const seconds = timedSteps >= steps
    ? (marks[marks.length - 1] - t0) / 1000
    : (first + (steps - 1) * secondsPerStep * 1000) / 1000;
  return { seconds, secondsPerStep };
}

/**
 * Time the DDIM (50 steps) and DDPM (1000 steps) pipelines at batch 1 and 16 on both models.
 *
 * @param options `quick` times fewer steps (and extrapolates) everywhere
 * @returns one row per model, sampler and batch
 */
export async function benchEndToEnd(options: BenchOptions = {}): Promise<EndToEndResult> {
  const log = options.log ?? ((line: string) => console.error(line));
  const quick = options.quick ?? false;
  const builtin = await DDIMPipeline.fromPretrained("builtin:shapes32");
  const models: { name: string; unet: DenoisingModel; timed: (steps: number, batch: number) => number }[] = [
    {
      name: "builtin:shapes32",
      unet: builtin.unet,
      timed: (steps) => (quick ? Math.min(steps, 25) : steps),
    },
  ];
  const t0 = performance.now();
  models.push({
    name: "cifar10-32 architecture",
    unet: await cifarArchitecture(),
    timed: (_, batch) => (quick ? 2 : batch === 1 ? 6 : 3),
  });
  const buildSeconds = (performance.now() - t0) / 1000;
  log(`end_to_end: compiled the cifar10-32 architecture in ${buildSeconds.toFixed(1)} s`);
  const schedulerConfig = configOf(builtin.scheduler);
  const rows: EndToEndRow[] = [];
  for (const { name, unet, timed } of models) {
    // warm-up: onnxruntime plans memory on the first run of each shape
    for (const batch of [1, 16]) {
      await unet.predict(Tensor.zeros([batch, 3, 32, 32]), 500);
    }
    for (const sampler of ["DDIM", "DDPM"] as const) {
      const steps = sampler === "DDIM" ? 50 : 1000;
      for (const batch of [1, 16]) {
        const timedSteps = timed(steps, batch);
        const result = sampler === "DDIM"
          ? await timeRun(
            (onStep) =>
              new DDIMPipeline({ unet, scheduler: DDIMScheduler.fromConfig(schedulerConfig) }).sample({
                numInferenceSteps: steps,
                eta: 0,
                seed: 0,
                batchSize: batch,
                onStep,
              }),
            steps,
            timedSteps,
          )
          : await timeRun(
            (onStep) =>
              new DDPMPipeline({ unet, scheduler: DDPMScheduler.fromConfig(schedulerConfig) }).sample({
                numInferenceSteps: steps,
                seed: 0,
                batchSize: batch,
                onStep,
              }),
            steps,
            timedSteps,
          );
        const row: EndToEndRow = {
          model: name,
          sampler: `${sampler} ${steps} steps${sampler === "DDIM" ? ", eta 0" : ""}`,
          batch,
          steps,
          timedSteps,
          secondsPerStep: result.secondsPerStep,
          seconds: result.seconds,
          imagesPerSecond: batch / result.seconds,
        };
        rows.push(row);
        log(`end_to_end: ${name}, ${row.sampler}, batch ${batch}: ${row.imagesPerSecond.toPrecision(3)} images/s`);
      }
    }
  }
  return {
    description: "Whole pipelines (x_T, model, scheduler step, noise) through `DDIMPipeline` and `DDPMPipeline`, " +
      "onnxruntime-node on the CPU with its default threads (one per core). Where fewer steps were timed than " +
      "the run has, the run's time is the first step plus the remaining steps at the measured steady per-step time.",
    rows,
    notes: [
      `Compiling the cifar10-32 architecture (random weights) to ONNX and opening the session took ` +
      `${buildSeconds.toFixed(1)} s; it is not included above.`,
    ],
  };
}

if (import.meta.main) {
  const result = await benchEndToEnd({ quick: process.argv.includes("--quick") });
  console.log(JSON.stringify(result, null, 2));
}
