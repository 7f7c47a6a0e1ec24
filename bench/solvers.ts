/**
 * "DDIM is Euler": how far each sampler lands from the exact solution of the probability-flow ODE, against the number
 * of model evaluations (NFE) it spends, and what the learned model's samples look like at 5, 10 and 20 evaluations.
 *
 * 1. Global error: `builtin:gaussian32` is one Gaussian, so its probability-flow ODE is linear and solved exactly
 *    (`probabilityFlowSolution`). Every sampler starts from the same x_T at t = 999 (`timestep_spacing` trailing) and
 *    ends at alphaBar = 1; the RMS distance of its x_0 from the exact x_0 is its global error, and the slope of
 *    log error against log NFE is its order (DDIM, Euler's method on the DDIM paper's eq. (14), should show 1).
 * 2. Table 1 metric on the learned model `builtin:ddpm-shapes32`: the log-likelihood gap of the samples under the
 *    exact data law, per dimension, at NFE = 5, 10, 20, each scheduler built with `fromConfig` from the checkpoint's
 *    own scheduler config, as a diffusers user swaps schedulers.
 *
 * Standalone: `bun bench/solvers.ts [--quick]` prints JSON; `npm run bench -- --only solvers` writes it into
 * docs/benchmarks.md.
 *
 * @module
 */
import process from "node:process";
import { builtinMixture } from "../lib/models/builtin_models.ts";
import { GaussianMixture, probabilityFlowSolution } from "../lib/models/gaussian_mixture.ts";
import { modelFromFunction } from "../lib/core/model.ts";
import { fromPretrained } from "../lib/models/load.ts";
import { type ConvergenceFit, fitConvergenceOrder, meanLogLikelihood } from "../lib/math/metrics.ts";
import { samplingLoop } from "../lib/pipelines/sampling.ts";
import { schedulerFromConfig } from "../lib/schedulers/registry.ts";
import { DDIMScheduler } from "../lib/schedulers/ddim.ts";
import type { Scheduler } from "../lib/schedulers/scheduler.ts";
import type { DenoisingModel } from "../lib/core/model.ts";
import { Tensor } from "../lib/core/tensor.ts";
import { TorchGenerator } from "../lib/core/torch_generator.ts";
import type { BenchOptions } from "./run.ts";

/** A sampler under test: its name, the diffusers class, and the config keys that make it this variant. */
export interface SolverSpec {
  name: string;
  className: string;
  config: Record<string, unknown>;
  /** Only for the learned model (a variant that differs from another only where the exact part turns it off). */
  learnedOnly?: boolean;
  /** Its schedule always ends at sigma = 0 (diffusers' Heun has no `final_sigmas_type`). */
  endsAtZero?: boolean;
}

/** The samplers compared, each a diffusers class with the keys that pick the variant. */
export const SOLVERS: readonly SolverSpec[] = [
  { name: "DDIM (eta = 0)", className: "DDIMScheduler", config: { set_alpha_to_one: true } },
  // PNDM steps back by T // S whatever the spacing (as diffusers' does), so it gets the spacing that matches its steps
  {
    name: "PNDM (PLMS)",
    className: "PNDMScheduler",
    config: { skip_prk_steps: true, set_alpha_to_one: true, timestep_spacing: "leading" },
  },
  { name: "Euler", className: "EulerDiscreteScheduler", config: {} },
  { name: "Heun", className: "HeunDiscreteScheduler", config: {}, endsAtZero: true },
  {
    name: "DPM-Solver++ 2M",
    className: "DPMSolverMultistepScheduler",
    config: { algorithm_type: "dpmsolver++", solver_order: 2 },
  },
  {
    name: "DPM-Solver++ 3M",
    className: "DPMSolverMultistepScheduler",
    config: { algorithm_type: "dpmsolver++", solver_order: 3 },
  },
  // the checkpoint clips x0 to [-1, 1] in DDIM; the samplers above without clip_sample do not: this row separates
  // the effect of clipping from the solver's own
  {
    name: "DDIM (eta = 0), clip_sample off",
    className: "DDIMScheduler",
    config: { set_alpha_to_one: true, clip_sample: false },
    learnedOnly: true,
  },
];

/**
 * Every sampler of the error part ends at alphaBar_0, the first training timestep, instead of alphaBar = 1: the last
 * step to sigma = 0 is an infinite step in log-SNR that every sampler takes at first order (it returns the predicted
 * x0), and its error would hide the order of the steps before it.
 */
const END_AT_FIRST_TIMESTEP = { set_alpha_to_one: false, final_sigmas_type: "sigma_min" };

/** Errors below this are float32 rounding, not the method's: they are left out of the order fits. */
const FLOAT32_FLOOR = 1e-4;

/**
 * The exact noise predictor of a mixture as a model, at the alpha-bar of timestep t (linearly interpolated between
 * training timesteps for the fractional ones of the sigma samplers).
 */
function exactGaussianModel(mixture: GaussianMixture, config: Record<string, unknown>): DenoisingModel {
  const table = DDIMScheduler.fromConfig(config).alphasCumprod;
  const alphaBarAt = (t: number) => {
    const low = Math.floor(t);
    const high = Math.min(low + 1, table.length - 1);
    return table[low] + (t - low) * (table[high] - table[low]);
  };
  return modelFromFunction((x, t) => {
    const flat = x.reshape([x.shape[0], mixture.dim]);
    return mixture.idealNoise(flat, alphaBarAt(Number(t))).reshape(x.shape);
  }, { sampleSize: 1, inChannels: mixture.dim });
}

/** One sampler at one NFE. */
export interface SolverErrorRow {
  /** Which exact problem: "gaussian32" or "gaussian2d". */
  problem: string;
  solver: string;
  /** The S passed to `setTimesteps`. */
  steps: number;
  /** Model evaluations: the length of the schedule. */
  nfe: number;
  /** RMS over all pixels of x_0(sampler) - x_0(exact). */
  error: number;
}

/** One sampler at one NFE on the learned model. */
export interface SolverQualityRow {
  solver: string;
  steps: number;
  nfe: number;
  /** Mean log-likelihood per dimension of the samples minus that of exact samples. */
  logLikelihoodGap: number;
  logLikelihoodGapError: number;
}

/** Everything `benchSolvers` measured. */
export interface SolversResult {
  description: string;
  samples: number;
  errors: SolverErrorRow[];
  /** The least-squares order of each sampler per problem, over NFE >= 20 and errors above the float32 floor. */
  orders: Record<string, Record<string, ConvergenceFit>>;
  quality: SolverQualityRow[];
  qualitySamples: number;
  exactLogLikelihoodPerDim: number;
}

/** The schedule length (model evaluations) of S steps. */
function evaluations(scheduler: Scheduler, steps: number): number {
  scheduler.setTimesteps(steps);
  return scheduler.timesteps.length;
}

/** The largest S whose schedule spends at most `nfe` model evaluations (Heun spends 2S - 1), or 0. */
export function stepsForBudget(scheduler: Scheduler, nfe: number): number {
  let best = 0;
  for (let steps = 1; steps <= nfe; steps++) {
    if (evaluations(scheduler, steps) <= nfe) best = steps;
  }
  return best;
}

/**
 * Run one sampler from standard normal noise z: x_T = initNoiseSigma z, then the sampling loop.
 *
 * @returns the final sample and the variance-preserving x_T it started from (c_in x_T, which is x_T itself for the
 *   DDPM family and x_T / sqrt(sigma^2 + 1) for the Karras-sigma samplers)
 */
async function runSolver(
  model: DenoisingModel,
  scheduler: Scheduler,
  z: Tensor,
  generator?: TorchGenerator,
): Promise<{ x0: Tensor; start: Tensor; firstTimestep: number }> {
  const xT = new Tensor(z.data.map((v) => v * scheduler.initNoiseSigma), z.shape);
  const firstTimestep = scheduler.timesteps[0];
  const start = scheduler.scaleModelInput(xT, firstTimestep);
  const loop = samplingLoop(model, scheduler, { sample: xT, stepOptions: generator ? { generator } : {} });
  let result = await loop.next();
  while (!result.done) result = await loop.next();
  return { x0: result.value, start, firstTimestep };
}

function rmsDifference(a: Tensor, b: Tensor): number {
  let squared = 0;
  for (let i = 0; i < a.size; i++) squared += (a.data[i] - b.data[i]) ** 2;
  return Math.sqrt(squared / a.size);
}

/**
 * Measure every sampler's global error against the exact ODE solution, fit its order, and the Table 1 metric on
 * the learned model at NFE = 5, 10, 20.
 *
 * @param options `quick` for NFE up to 50 and 16 learned-model samples (full: up to 200, 64 samples)
 * @returns the rows, the fitted orders and the quality rows
 */
export async function benchSolvers(options: BenchOptions & { solvers?: readonly SolverSpec[] } = {}): Promise<
  SolversResult
> {
  const log = options.log ?? ((line: string) => console.error(line));
  const quick = options.quick ?? false;
  const solvers = options.solvers ?? SOLVERS;
  const budgets = quick ? [5, 10, 20, 50] : [5, 10, 20, 50, 100, 200];
  const samples = 8;
  // 1. global error on two exact single Gaussians: builtin:gaussian32 (the shapes images: its isotropic variance
  //    0.0123 makes the ODE stiff near t = 0) and a well-conditioned 2-D Gaussian (variance 0.25), whose solution
  //    the samplers reach in their asymptotic regime
  const image = await fromPretrained("builtin:gaussian32");
  const plane = new GaussianMixture([{ weight: 1, mean: [0.3, -0.2], noiseVariance: 0.25 }], { dim: 2 });
  const problems = [
    {
      name: "gaussian32",
      model: image.unet,
      mixture: builtinMixture("builtin:gaussian32"),
      z: new TorchGenerator(14).randn([samples, 3, 32, 32]),
    },
    {
      name: "gaussian2d",
      model: exactGaussianModel(plane, image.scheduler.toConfig()),
      mixture: plane,
      z: new TorchGenerator(14).randn([256, 2, 1, 1]),
    },
  ];
  const base = { ...image.scheduler.toConfig(), timestep_spacing: "trailing", clip_sample: false };
  const errors: SolverErrorRow[] = [];
  for (const problem of problems) {
    for (const spec of solvers.filter((s) => !s.learnedOnly)) {
      const scheduler = schedulerFromConfig({
        ...base,
        ...spec.config,
        ...END_AT_FIRST_TIMESTEP,
        _class_name: spec.className,
      }) as Scheduler;
      const table = (scheduler as unknown as { alphasCumprod: Float32Array }).alphasCumprod;
      for (const nfe of budgets) {
        const steps = stepsForBudget(scheduler, nfe);
        if (steps === 0) continue;
        scheduler.setTimesteps(steps);
        const used = scheduler.timesteps.length;
        if (errors.some((r) => r.problem === problem.name && r.solver === spec.name && r.nfe === used)) continue;
        const { x0, start, firstTimestep } = await runSolver(problem.model, scheduler, problem.z);
        // the exact flow from the sampler's own first timestep
        const flat = (x: Tensor) => x.reshape([x.shape[0], x.size / x.shape[0]]);
        const exact = probabilityFlowSolution(problem.mixture, flat(start), {
          alphaBarT: table[firstTimestep],
          alphaBarS: spec.endsAtZero ? 1 : table[0],
        });
        const error = rmsDifference(x0, exact);
        errors.push({ problem: problem.name, solver: spec.name, steps, nfe: used, error });
        log(`solvers: ${problem.name}, ${spec.name}, NFE ${used} (S = ${steps}): RMS error ${error.toExponential(3)}`);
      }
    }
  }
  const orders: Record<string, Record<string, ConvergenceFit>> = {};
  for (const problem of problems) {
    orders[problem.name] = {};
    for (const spec of solvers) {
      const rows = errors.filter((r) =>
        r.problem === problem.name && r.solver === spec.name && r.nfe >= 20 && r.error > FLOAT32_FLOOR
      );
      if (rows.length >= 2) {
        orders[problem.name][spec.name] = fitConvergenceOrder(rows.map((r) => r.nfe), rows.map((r) => r.error));
      }
    }
  }
  // 2. the Table 1 metric on the learned model
  const qualitySamples = quick ? 16 : 64;
  const learned = await fromPretrained("builtin:ddpm-shapes32");
  const law = builtinMixture("builtin:ddpm-shapes32");
  const flat = (x: Tensor) => x.reshape([x.shape[0], x.size / x.shape[0]]);
  const exactLikelihood = meanLogLikelihood(
    flat(law.sample(qualitySamples, new TorchGenerator(2021)).samples),
    (x) => law.logDensity(x),
  );
  const dimensions = exactLikelihood.dimensions;
  const zLearned = new TorchGenerator(2020).randn([qualitySamples, 3, 32, 32]);
  const quality: SolverQualityRow[] = [];
  for (const spec of solvers) {
    const scheduler = schedulerFromConfig({
      ...learned.scheduler.toConfig(),
      ...spec.config,
      _class_name: spec.className,
    }) as Scheduler;
    for (const nfe of [5, 10, 20]) {
      const steps = stepsForBudget(scheduler, nfe);
      if (steps === 0) continue;
      scheduler.setTimesteps(steps);
      const { x0 } = await runSolver(learned.unet, scheduler, zLearned, new TorchGenerator(7));
      const likelihood = meanLogLikelihood(flat(x0), (x) => law.logDensity(x));
      quality.push({
        solver: spec.name,
        steps,
        nfe: scheduler.timesteps.length,
        logLikelihoodGap: likelihood.perDimension - exactLikelihood.perDimension,
        logLikelihoodGapError: Math.hypot(likelihood.standardError, exactLikelihood.standardError) / dimensions,
      });
      log(
        `solvers: learned model, ${spec.name}, NFE ${scheduler.timesteps.length}: gap ${
          quality.at(-1)!.logLikelihoodGap
        }`,
      );
    }
  }
  return {
    description: "Global error against the exact probability-flow ODE solution of two single Gaussians: " +
      `\`builtin:gaussian32\` (${samples} starting points, seed 14) and a 2-D Gaussian of variance 0.25 (256 points). ` +
      "Every sampler uses trailing spacing from t = 999 (PNDM, which steps back by T // S, leading spacing from its own " +
      "first timestep), clipping off, and ends at alphaBar_0 (Heun, which always " +
      "ends at sigma = 0, at alphaBar = 1); orders are fitted over NFE >= 20 where the error is above 1e-4. " +
      `Quality: \`builtin:ddpm-shapes32\`, ${qualitySamples} samples (seed 2020), each scheduler made with ` +
      "`fromConfig` from the checkpoint's scheduler config.",
    samples,
    errors,
    orders,
    quality,
    qualitySamples,
    exactLogLikelihoodPerDim: exactLikelihood.perDimension,
  };
}

if (import.meta.main) {
  const result = await benchSolvers({ quick: process.argv.includes("--quick") });
  console.log(JSON.stringify(result, null, 2));
}
