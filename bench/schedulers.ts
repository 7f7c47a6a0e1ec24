/**
 * Median milliseconds per scheduler `step()` on 1x3x256x256 and 16x3x32x32 samples, for DDIM eta = 0, DDIM eta = 1
 * with a generator, and DDPM with a generator, beside PyTorch's time for the same step on this machine; and for PNDM
 * (PLMS), Euler, Heun and DPM-Solver++ 2M, which have no PyTorch row here (their ratio is left empty).
 *
 * PyTorch's figures come from `tools/bench_torch_steps.py` (diffusers' DDIM and DDPM step written in torch), stored in
 * docs/benchmarks/torch_steps.json, with one thread (PyTorch's default here) and with two. This bench runs that script
 * first (when /usr/bin/python3 has torch), so both sides are measured in the same run; `--stored` uses the stored
 * figures instead. Each row is held to the faster of PyTorch's two same-run figures: a deterministic step (DDIM eta 0)
 * must take at most half of it, a noisy one at most all of it. The quiet-machine figures of docs/schedulers.md stand
 * beside them with their own ratio (measured at another time, so load can tilt that comparison either way). Two rows
 * time parts of a step alone: the two fresh output arrays every step returns, and a noisy step's draw (`fillRandn`
 * beside `torch.randn`):
 *
 *   npx bun bench/schedulers.ts [--stored]
 *
 * Each noisy case is timed twice: the whole step (drawing z with the generator) and the step with z passed in as
 * `varianceNoise` (the time without the draw, which is mt19937 + Box-Muller and measured apart). The CPU may be
 * shared, so medians of many repetitions are reported with the load average.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
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

/** One benchmark row: the case and shape, this package's medians, PyTorch's, the ratio and the speed goal. */
export interface SchedulerBenchRow {
  case: string;
  shape: string;
  /** The whole step, ms. */
  medianMs: number;
  /** The step with its noise given (no draw), ms; the same as medianMs for DDIM eta = 0. */
  withoutDrawMs: number;
  /** PyTorch's whole step with one thread, measured in this run (or stored), ms. */
  torch1ThreadMs: number;
  /** PyTorch's whole step with two threads, ms. */
  torch2ThreadsMs: number;
  /** PyTorch's whole step on a quiet machine, the figure docs/schedulers.md quotes, ms. */
  torchQuietMs: number;
  /** medianMs / the faster of PyTorch's one- and two-thread figures. */
  ratio: number;
  /** medianMs / torchQuietMs. */
  ratioToQuiet: number;
  /** withoutDrawMs / PyTorch's fastest step with its noise given (one or two threads). */
  ratioWithoutDraw: number;
  /** The largest ratio the goal allows: 0.5 for the deterministic step, 1 for a noisy one; NaN where none is set. */
  goal: number;
  /** "yes" when ratio <= goal, "no" when not, "" without a PyTorch row. */
  met: string;
}

/** One row of tools/bench_torch_steps.py's JSON. */
interface TorchRow {
  case: string;
  shape: string;
  medianMs: number;
  withoutDrawMs: number;
  /** `torch.randn(shape, generator=...)` alone, ms (0 for a step without noise). */
  drawMs: number;
}

/** What tools/bench_torch_steps.py writes: one run per thread count. */
interface TorchSteps {
  torch: string;
  runs: { threads: number; rows: TorchRow[] }[];
}

/**
 * PyTorch 1.13's step on this 2-core machine when it was quiet (ms, 1x3x256x256 and 16x3x32x32), the figures
 * docs/schedulers.md quotes, measured with the steps of tools/bench_torch_steps.py.
 */
const TORCH_QUIET_MS: Record<string, Record<string, number>> = {
  "DDIM eta 0": { "1x3x256x256": 1.06, "16x3x32x32": 0.12 },
  "DDIM eta 1 + generator": { "1x3x256x256": 2.42, "16x3x32x32": 0.36 },
  "DDPM + generator": { "1x3x256x256": 2.75, "16x3x32x32": 0.42 },
};

/** The row that times only the two fresh output arrays a step returns (no scheduler, no arithmetic). */
const FRESH_OUTPUTS = "two fresh output arrays alone";
/** The row that times only a noisy step's draw, `fillRandn` of the sample's size, against `torch.randn`'s. */
const RANDN_DRAW = "randn draw alone";

const root = new URL("../", import.meta.url).pathname;
const TORCH_JSON = `${root}docs/benchmarks/torch_steps.json`;

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

function medianMs(run: () => unknown, repetitions: number): number {
  for (let i = 0; i < Math.min(50, repetitions); i++) run();
  const times: number[] = [];
  for (let i = 0; i < repetitions; i++) {
    const start = performance.now();
    run();
    times.push(performance.now() - start);
  }
  return median(times);
}

/**
 * Run tools/bench_torch_steps.py (Debian's python3-torch) so PyTorch is measured in this run, writing its JSON.
 *
 * @param repetitions the script's repetitions for the large shape
 * @returns true when it ran, false when python3 or torch is missing (the stored JSON is used then)
 */
export function measureTorch(repetitions = 300): boolean {
  const run = spawnSync(
    "/usr/bin/python3",
    [
      `${root}tools/bench_torch_steps.py`,
      "--out",
      TORCH_JSON,
      "--repetitions",
      String(repetitions),
      "--threads",
      "1,2",
    ],
    { encoding: "utf8", stdio: ["ignore", "ignore", "inherit"] },
  );
  return run.status === 0;
}

/** What `benchSchedulers` returns: the rows, and where PyTorch's figures came from. */
export interface SchedulerBench {
  rows: SchedulerBenchRow[];
  /** "torch VERSION, 1 and 2 threads, measured in this run" or "... stored in docs/benchmarks/torch_steps.json". */
  pytorch: string;
  /** The 1-minute load average before and after (above about 1 on two cores, other work inflates the figures). */
  loadAverage: string;
}

/**
 * Time `step()` for each scheduler case and shape, and set PyTorch's figures (measured in the same run when
 * python3-torch is installed) beside them.
 *
 * median over repetitions of the wall time of one step
 *
 * @param options `repetitions` per case for the large shape (default 300, 60 with `quick`; four times as many for the
 *   small one); `torch: false` uses the stored PyTorch figures instead of measuring them
 * @returns the rows and the provenance of PyTorch's figures
 * @example
 * ```ts
 * import { benchSchedulers } from "./schedulers.ts";
 * const { rows } = await benchSchedulers({ repetitions: 20, torch: false });
 * ```
 */
export async function benchSchedulers(
  options: { repetitions?: number; quick?: boolean; torch?: boolean } = {},
): Promise<SchedulerBench> {
  const loadBefore = loadavg()[0];
  const repetitions = options.repetitions ?? (options.quick ? 60 : 300);
  const measured = options.torch !== false && measureTorch(repetitions);
  const torch = JSON.parse(readFileSync(TORCH_JSON, "utf8")) as TorchSteps;
  const rows: SchedulerBenchRow[] = [];
  let kept: Float32Array[] = [];
  for (const shape of [[1, 3, 256, 256], [16, 3, 32, 32]]) {
    const reps = shape[0] === 1 ? repetitions : 4 * repetitions;
    const generator = new TorchGenerator(0);
    const sample = generator.randn(shape);
    const modelOutput = generator.randn(shape);
    const varianceNoise = generator.randn(shape);
    const ddim = DDIMScheduler.fromConfig({});
    ddim.setTimesteps(50);
    const ddpm = DDPMScheduler.fromConfig({});
    ddpm.setTimesteps(50);
    const cases: [string, () => Tensor, () => Tensor][] = [
      [
        "DDIM eta 0",
        () => ddim.step(modelOutput, 500, sample, { eta: 0 }).prevSample,
        () => ddim.step(modelOutput, 500, sample, { eta: 0 }).prevSample,
      ],
      [
        "DDIM eta 1 + generator",
        () => ddim.step(modelOutput, 500, sample, { eta: 1, generator }).prevSample,
        () => ddim.step(modelOutput, 500, sample, { eta: 1, varianceNoise }).prevSample,
      ],
      [
        "DDPM + generator",
        () => ddpm.step(modelOutput, 500, sample, { generator }).prevSample,
        () => ddpm.step(modelOutput, 500, sample, { varianceNoise }).prevSample,
      ],
    ];
    // PNDM, Euler, Heun and DPM-Solver++ keep state between steps: each case walks its 50-step schedule in order,
    // restarting it (one setTimesteps, timed with the step) when done; they draw no noise here
    for (
      const [name, scheduler] of [
        ["PNDM (PLMS)", PNDMScheduler.fromConfig({ skip_prk_steps: true })],
        ["Euler", EulerDiscreteScheduler.fromConfig({})],
        ["Heun", HeunDiscreteScheduler.fromConfig({})],
        ["DPM-Solver++ 2M", DPMSolverMultistepScheduler.fromConfig({})],
      ] as const
    ) {
      const walk = walkSchedule(scheduler as Scheduler<object>, modelOutput, sample);
      cases.push([name, walk, walk]);
    }
    // what any step pays before arithmetic: x_{t-1} and predX0 as two fresh arrays of the sample's size (PyTorch's
    // allocator hands back recently freed, cached memory; a garbage-collected runtime hands out fresh memory)
    const freshOutputs = () => {
      kept = [modelOutput.data.slice(), sample.data.slice()]; // kept, so the engine cannot drop the copies
      return sample;
    };
    cases.push([FRESH_OUTPUTS, freshOutputs, freshOutputs]);
    const drawBuffer = new Float32Array(sample.size);
    const draw = () => (generator.fillRandn(drawBuffer), sample);
    cases.push([RANDN_DRAW, draw, draw]);
    for (const [name, whole, given] of cases) {
      const shapeName = shape.join("x");
      // PyTorch's figure for this case: the fresh-outputs row is set against the deterministic step, the cheapest
      // one, and the draw against torch.randn's
      const against = name === FRESH_OUTPUTS ? "DDIM eta 0" : name === RANDN_DRAW ? "DDIM eta 1 + generator" : name;
      const [torchOne, torchTwo] = [1, 2].map((threads) => {
        const row = torch.runs.find((run) => run.threads === threads)?.rows.find((row) =>
          row.case === against && row.shape === shapeName
        );
        return row && name === RANDN_DRAW ? { ...row, medianMs: row.drawMs, withoutDrawMs: row.drawMs } : row;
      });
      const compared = ["DDIM eta 0", "DDIM eta 1 + generator", "DDPM + generator"].includes(name);
      if ((torchOne === undefined || torchTwo === undefined) && compared) {
        throw new Error(`${TORCH_JSON} lacks a 1- or 2-thread row for ${name} at ${shapeName}`);
      }
      const total = medianMs(whole, reps);
      const withoutDraw = name === "DDIM eta 0" || given === whole ? total : medianMs(given, reps);
      const torchQuietMs = name === RANDN_DRAW ? NaN : TORCH_QUIET_MS[against]?.[shapeName] ?? NaN;
      const fastest = Math.min(torchOne?.medianMs ?? NaN, torchTwo?.medianMs ?? NaN);
      const fastestWithoutDraw = Math.min(torchOne?.withoutDrawMs ?? NaN, torchTwo?.withoutDrawMs ?? NaN);
      const goal = !compared ? NaN : name === "DDIM eta 0" ? 0.5 : 1;
      const ratio = total / fastest;
      rows.push({
        case: name,
        shape: shapeName,
        medianMs: total,
        withoutDrawMs: withoutDraw,
        torch1ThreadMs: torchOne?.medianMs ?? NaN,
        torch2ThreadsMs: torchTwo?.medianMs ?? NaN,
        torchQuietMs,
        ratio,
        ratioToQuiet: total / torchQuietMs,
        ratioWithoutDraw: withoutDraw / fastestWithoutDraw,
        goal,
        met: !compared ? "" : ratio <= goal ? "yes" : "no",
      });
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
  }
  if (kept.length !== 2) throw new Error("the fresh-outputs case did not run");
  const where = measured ? "measured in this run" : `stored in ${TORCH_JSON.slice(root.length)}`;
  const threads = torch.runs.map((run) => run.threads).join(" and ");
  return {
    rows,
    pytorch: `torch ${torch.torch}, ${threads} thread(s), ${where} (tools/bench_torch_steps.py)`,
    loadAverage: `${loadBefore.toFixed(2)} before, ${loadavg()[0].toFixed(2)} after`,
  };
}

if (import.meta.main) {
  const { rows, pytorch, loadAverage } = await benchSchedulers({ torch: !process.argv.includes("--stored") });
  const cell = (v: number, width: number) => (Number.isNaN(v) ? "" : v.toFixed(3)).padStart(width);
  console.log(
    "case                           shape          total ms  no draw ms  torch 1t  torch 2t  torch quiet  ratio  quiet  no draw  goal  met",
  );
  for (const row of rows) {
    console.log(
      `${row.case.padEnd(31)}${row.shape.padEnd(15)}${cell(row.medianMs, 8)}${cell(row.withoutDrawMs, 12)}` +
        `${cell(row.torch1ThreadMs, 10)}${cell(row.torch2ThreadsMs, 10)}${cell(row.torchQuietMs, 13)}` +
        `${cell(row.ratio, 7)}${cell(row.ratioToQuiet, 7)}${cell(row.ratioWithoutDraw, 9)}${cell(row.goal, 6)}${
          row.met.padStart(5)
        }`,
    );
  }
  console.log(`PyTorch: ${pytorch}`);
  // The machine's 1-minute load average: figures taken above about 1 on two cores are inflated by other work.
  console.log(`load average (1 min): ${loadAverage}`);
}
