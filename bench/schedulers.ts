/**
 * Median milliseconds per scheduler `step()` on 1x3x256x256 and 16x3x32x32 samples, for DDIM eta = 0, DDIM eta = 1
 * with a generator, and DDPM with a generator, next to diffusers + PyTorch 1.13 on the same kind of 2-core machine,
 * and for PNDM (PLMS), Euler, Heun and DPM-Solver++ 2M (no diffusers reference figure yet).
 *
 * Run: `npx bun bench/schedulers.ts` (or `deno run -A bench/schedulers.ts`). The CPU may be shared, so medians of
 * many repetitions are reported.
 *
 * @module
 */
import { loadavg } from "node:os";
import { DDIMScheduler } from "../lib/schedulers/ddim.ts";
import { DDPMScheduler } from "../lib/schedulers/ddpm.ts";
import { PNDMScheduler } from "../lib/schedulers/pndm.ts";
import { EulerDiscreteScheduler } from "../lib/schedulers/euler_discrete.ts";
import { HeunDiscreteScheduler } from "../lib/schedulers/heun_discrete.ts";
import type { Scheduler } from "../lib/schedulers/scheduler.ts";
import { DPMSolverMultistepScheduler } from "../lib/schedulers/dpm_solver_multistep.ts";
import type { Tensor } from "../lib/core/tensor.ts";
import { TorchGenerator } from "../lib/core/torch_generator.ts";

/** One benchmark row: the case, the shape, this package's median and diffusers' reference median (ms). */
export interface SchedulerBenchRow {
  case: string;
  shape: string;
  medianMs: number;
  diffusersMs: number;
}

/** diffusers + PyTorch 1.13 on a 2-core machine, median ms per step (project facts). */
const REFERENCE: Record<string, [number, number]> = {
  "DDIM eta 0": [0.72, 0.081],
  "DDIM eta 1 + generator": [2.03, 0.26],
  "DDPM + generator": [2.31, 0.30],
};

/** A step function that visits a stateful scheduler's 50-step schedule in order, setting it again after the end. */
function walkSchedule(scheduler: Scheduler<object>, modelOutput: Tensor, sample: Tensor): () => Tensor {
  let k = Infinity;
  return () => {
    if (k >= scheduler.timesteps.length) {
      scheduler.setTimesteps(50);
      k = 0;
    }
    return scheduler.step(modelOutput, scheduler.timesteps[k++], sample).prevSample;
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/**
 * Time `step()` for each scheduler case and shape.
 *
 * median over repetitions of the wall time of one step
 *
 * @param options `repetitions` per case (default 200)
 * @returns one row per case and shape
 * @example
 * ```ts
 * import { benchSchedulers } from "./schedulers.ts";
 * const rows = await benchSchedulers({ repetitions: 20 });
 * ```
 */
export async function benchSchedulers(options: { repetitions?: number } = {}): Promise<SchedulerBenchRow[]> {
  const repetitions = options.repetitions ?? 200;
  const rows: SchedulerBenchRow[] = [];
  const shapes = [[1, 3, 256, 256], [16, 3, 32, 32]];
  for (const [shapeIndex, shape] of shapes.entries()) {
    const generator = new TorchGenerator(0);
    const sample = generator.randn(shape);
    const modelOutput = generator.randn(shape);
    const ddim = DDIMScheduler.fromConfig({});
    ddim.setTimesteps(50);
    const ddpm = DDPMScheduler.fromConfig({});
    ddpm.setTimesteps(50);
    const cases: [string, () => Tensor][] = [
      ["DDIM eta 0", () => ddim.step(modelOutput, 500, sample, { eta: 0 }).prevSample],
      ["DDIM eta 1 + generator", () => ddim.step(modelOutput, 500, sample, { eta: 1, generator }).prevSample],
      ["DDPM + generator", () => ddpm.step(modelOutput, 500, sample, { generator }).prevSample],
      // PNDM, Euler and Heun keep state between steps: each case walks its 50-step schedule in order, restarting it
      // (one setTimesteps, timed with the step) when done
      ["PNDM (PLMS)", walkSchedule(PNDMScheduler.fromConfig({ skip_prk_steps: true }), modelOutput, sample)],
      ["Euler", walkSchedule(EulerDiscreteScheduler.fromConfig({}), modelOutput, sample)],
      ["Heun", walkSchedule(HeunDiscreteScheduler.fromConfig({}), modelOutput, sample)],
      // DPM-Solver++ 2M keeps the last model output: all but the first and last steps of its walk are second order
      ["DPM-Solver++ 2M", walkSchedule(DPMSolverMultistepScheduler.fromConfig({}), modelOutput, sample)],
    ];
    for (const [name, run] of cases) {
      for (let i = 0; i < Math.min(50, repetitions); i++) run();
      const times: number[] = [];
      for (let i = 0; i < repetitions; i++) {
        const start = performance.now();
        run();
        times.push(performance.now() - start);
      }
      rows.push({
        case: name,
        shape: shape.join("x"),
        medianMs: median(times),
        diffusersMs: REFERENCE[name]?.[shapeIndex] ?? NaN,
      });
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
  }
  return rows;
}

if (import.meta.main) {
  const loadBefore = loadavg()[0];
  const rows = await benchSchedulers();
  console.log("case                     shape          median ms   diffusers ms");
  for (const row of rows) {
    console.log(
      `${row.case.padEnd(25)}${row.shape.padEnd(15)}${row.medianMs.toFixed(3).padStart(9)}   ${
        (Number.isNaN(row.diffusersMs) ? "-" : row.diffusersMs.toFixed(3)).padStart(12)
      }`,
    );
  }
  // The machine's 1-minute load average: figures taken above about 1 on two cores are inflated by other work.
  console.log(`load average (1 min): ${loadBefore.toFixed(2)} before, ${loadavg()[0].toFixed(2)} after`);
}
