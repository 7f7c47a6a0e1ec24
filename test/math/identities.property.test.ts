/**
 * Property tests: the identities of docs/math.md, proved symbolically in test/math/equations.test.ts, hold for the
 * schedulers' float32 arithmetic at random timesteps, eta, step sub-sequences and seeds.
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { DDIMScheduler } from "../../lib/schedulers/ddim.ts";
import { DDIMInverseScheduler } from "../../lib/schedulers/ddim_inverse.ts";
import { DDPMScheduler } from "../../lib/schedulers/ddpm.ts";
import { Tensor } from "../../lib/core/tensor.ts";
import { TorchGenerator } from "../../lib/core/torch_generator.ts";

const SHAPE = [2, 3, 4, 4];
const T = 1000;
const RUNS = { numRuns: 40 };
/** Step counts that divide T, so every sub-sequence is evenly spaced ("leading" spacing, as diffusers' default). */
const STEP_COUNTS = [1000, 500, 250, 100, 50, 20, 10, 5];

const maxAbs = (x: Tensor) => x.data.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
const maxAbsDiff = (a: Tensor, b: Tensor) => {
  expect(b.shape).toEqual(a.shape);
  let m = 0;
  for (let i = 0; i < a.size; i++) m = Math.max(m, Math.abs(a.data[i] - b.data[i]));
  return m;
};
const map = (x: Tensor, f: (v: number, i: number) => number) => new Tensor(x.data.map(f), x.shape);
const scaled = (x: Tensor, s: number) => map(x, (v) => v * s);

/**
 * Float32 tolerance: 2^-24 relative rounding per operation, a few dozen operations, on intermediates as large as
 * (|x| + |eps|) / sqrt(alphaBar_t) * sqrt(alphaBar_{t-1}); 1e-5 relative to that scale is ~170 ulps.
 */
function float32Tolerance(scale: number): number {
  return 1e-5 * (1 + scale);
}

/** Random inputs: a step count, an index into its timesteps, a seed, and how large the sample is. */
const stepInputs = (stepCounts: readonly number[]) =>
  fc.record({
    steps: fc.constantFrom(...stepCounts),
    position: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
    seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
    sampleScale: fc.double({ min: 0.1, max: 4, noNaN: true }),
  });

function draw(seed: number, sampleScale: number) {
  const generator = new TorchGenerator(seed);
  const sample = scaled(generator.randn(SHAPE), sampleScale);
  const modelOutput = generator.randn(SHAPE);
  return { sample, modelOutput, noiseSeed: seed + 1 };
}

function alphaBars(scheduler: DDIMScheduler, t: number, steps: number) {
  const prev = t - T / steps;
  const alphaBarT = scheduler.alphasCumprod[t];
  const alphaBarPrev = prev >= 0 ? scheduler.alphasCumprod[prev] : 1; // set_alpha_to_one (diffusers default)
  return { alphaBarT, alphaBarPrev };
}

/**
 * A DDIM and a DDPM scheduler on the same schedule, one of its timesteps, a drawn sample and model output, and the
 * float32 scale of the step's intermediates (see `float32Tolerance`).
 */
function ddimDdpmPair(
  clipSample: boolean,
  { steps, position, seed, sampleScale }: { steps: number; position: number; seed: number; sampleScale: number },
) {
  const ddim = DDIMScheduler.fromConfig({ num_train_timesteps: T, clip_sample: clipSample });
  const ddpm = DDPMScheduler.fromConfig({ num_train_timesteps: T, clip_sample: clipSample });
  ddim.setTimesteps(steps);
  ddpm.setTimesteps(steps);
  const t = ddim.timesteps[Math.floor(position * steps)];
  const { sample, modelOutput, noiseSeed } = draw(seed, sampleScale);
  const { alphaBarT, alphaBarPrev } = alphaBars(ddim, t, steps);
  const scale = (maxAbs(sample) + maxAbs(modelOutput)) * Math.sqrt(alphaBarPrev / alphaBarT) + 5;
  return { ddim, ddpm, t, sample, modelOutput, noiseSeed, alphaBarT, alphaBarPrev, scale };
}

describe("DDIM at eta = 1 equals DDPM given the same noise, eq. (8)", () => {
  for (
    const [label, stepCounts] of [
      ["consecutive timesteps", [1000]],
      ["step sub-sequences", STEP_COUNTS.slice(1)],
    ] as const
  ) {
    test(`ddim step with eta = 1 equals the DDPM step, no clipping, ${label}`, () => {
      fc.assert(
        fc.property(stepInputs(stepCounts), (inputs) => {
          const { ddim, ddpm, t, sample, modelOutput, noiseSeed, scale } = ddimDdpmPair(
            false,
            inputs,
          );
          const fromDdim = ddim.step(modelOutput, t, sample, { eta: 1, generator: new TorchGenerator(noiseSeed) });
          const fromDdpm = ddpm.step(modelOutput, t, sample, { generator: new TorchGenerator(noiseSeed) });
          expect(maxAbsDiff(fromDdim.prevSample, fromDdpm.prevSample)).toBeLessThanOrEqual(float32Tolerance(scale));
        }),
        RUNS,
      );
    });
  }

  test("ddim step with eta = 1, clipping and useClippedModelOutput equals the clipped DDPM step, eq. (10)", () => {
    fc.assert(
      fc.property(stepInputs(STEP_COUNTS), (inputs) => {
        const { ddim, ddpm, t, sample, modelOutput, noiseSeed, scale } = ddimDdpmPair(
          true,
          inputs,
        );
        const fromDdim = ddim.step(modelOutput, t, sample, {
          eta: 1,
          useClippedModelOutput: true,
          generator: new TorchGenerator(noiseSeed),
        });
        const fromDdpm = ddpm.step(modelOutput, t, sample, { generator: new TorchGenerator(noiseSeed) });
        expect(maxAbsDiff(fromDdim.prevSample, fromDdpm.prevSample)).toBeLessThanOrEqual(float32Tolerance(scale));
      }),
      RUNS,
    );
  });

  test("without useClippedModelOutput the clipped samplers differ by (1 - alphaBar_{t-1}) sqrt(alpha_t) / sqrt(1 - alphaBar_t) (eps - eps_clipped), eq. (10)", () => {
    let clippedSomewhere = 0;
    fc.assert(
      fc.property(stepInputs(STEP_COUNTS), (inputs) => {
        const { ddim, ddpm, t, sample, modelOutput, noiseSeed, alphaBarT, alphaBarPrev, scale } = ddimDdpmPair(
          true,
          inputs,
        );
        const fromDdim = ddim.step(modelOutput, t, sample, { eta: 1, generator: new TorchGenerator(noiseSeed) });
        const fromDdpm = ddpm.step(modelOutput, t, sample, { generator: new TorchGenerator(noiseSeed) });
        const alpha = alphaBarT / alphaBarPrev;
        // the clipped x0 and the noise re-derived from it, eq. (10)
        const x0Clipped = fromDdim.predOriginalSample;
        const mismatch = map(sample, (x, i) => {
          const epsClipped = (x - Math.sqrt(alphaBarT) * x0Clipped.data[i]) / Math.sqrt(1 - alphaBarT);
          return (1 - alphaBarPrev) * Math.sqrt(alpha) / Math.sqrt(1 - alphaBarT) * (modelOutput.data[i] - epsClipped);
        });
        if (maxAbs(mismatch) > 1e-3) clippedSomewhere++;
        const difference = map(fromDdim.prevSample, (v, i) => v - fromDdpm.prevSample.data[i]);
        expect(maxAbsDiff(difference, mismatch)).toBeLessThanOrEqual(float32Tolerance(scale));
      }),
      RUNS,
    );
    expect(clippedSomewhere).toBeGreaterThan(0); // the property was exercised with clipping that mattered
  });
});

describe("DDIM at eta = 0 is the Euler step of the ODE, eq. (9)", () => {
  test("ddim step with eta = 0 equals the closed form x_prev = sqrt(aPrev) (x / sqrt(a) + (sqrt((1 - aPrev) / aPrev) - sqrt((1 - a) / a)) eps)", () => {
    fc.assert(
      fc.property(stepInputs(STEP_COUNTS), ({ steps, position, seed, sampleScale }) => {
        const ddim = DDIMScheduler.fromConfig({ num_train_timesteps: T, clip_sample: false });
        ddim.setTimesteps(steps);
        const t = ddim.timesteps[Math.floor(position * steps)];
        const { sample, modelOutput } = draw(seed, sampleScale);
        const { alphaBarT, alphaBarPrev } = alphaBars(ddim, t, steps);
        const closedForm = map(sample, (x, i) =>
          Math.sqrt(alphaBarPrev) * (x / Math.sqrt(alphaBarT) +
            (Math.sqrt((1 - alphaBarPrev) / alphaBarPrev) - Math.sqrt((1 - alphaBarT) / alphaBarT)) *
              modelOutput.data[i]));
        const { prevSample } = ddim.step(modelOutput, t, sample, { eta: 0 });
        const scale = (maxAbs(sample) + maxAbs(modelOutput)) * Math.sqrt(alphaBarPrev / alphaBarT);
        expect(maxAbsDiff(prevSample, closedForm)).toBeLessThanOrEqual(float32Tolerance(scale));
      }),
      RUNS,
    );
  });
});

describe("DDIM inversion reverses the ODE step, eq. (9)", () => {
  test("one DDIM-inverse step undoes one DDIM step for a model returning the same noise at both timesteps", () => {
    fc.assert(
      fc.property(stepInputs(STEP_COUNTS), ({ steps, position, seed, sampleScale }) => {
        const ddim = DDIMScheduler.fromConfig({ num_train_timesteps: T, clip_sample: false });
        const inverse = DDIMInverseScheduler.fromConfig({ num_train_timesteps: T, clip_sample: false });
        ddim.setTimesteps(steps);
        inverse.setTimesteps(steps);
        const t = ddim.timesteps[Math.floor(position * steps)];
        const { sample, modelOutput } = draw(seed, sampleScale);
        const down = ddim.step(modelOutput, t, sample, { eta: 0 }).prevSample;
        // the inverse scheduler's step at timestep t goes from alphaBar[t - T/S] (1 below 0) up to alphaBar[t]
        const up = inverse.step(modelOutput, t, down).prevSample;
        const { alphaBarT, alphaBarPrev } = alphaBars(ddim, t, steps);
        const scale = (maxAbs(sample) + maxAbs(modelOutput)) * Math.sqrt(alphaBarPrev / alphaBarT);
        expect(maxAbsDiff(up, sample)).toBeLessThanOrEqual(float32Tolerance(scale));
      }),
      RUNS,
    );
  });
});

describe("addNoise samples the marginal q(x_t | x_0), eq. (2)", () => {
  test("addNoise has the marginal's mean sqrt(alphaBar_t) x0 and variance 1 - alphaBar_t on many samples", () => {
    const n = 65536;
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: T - 1 }),
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        fc.double({ min: -1, max: 1, noNaN: true }),
        (t, seed, x0Value) => {
          const ddim = DDIMScheduler.fromConfig({ num_train_timesteps: T });
          const x0 = new Tensor(new Float32Array(n).fill(x0Value), [1, 1, 256, 256]);
          const noise = new TorchGenerator(seed).randn(x0.shape);
          const xt = ddim.addNoise(x0, noise, [t]);
          const alphaBarT = ddim.alphasCumprod[t];
          // each element is the reparameterized draw x_t = sqrt(alphaBar_t) x0 + sqrt(1 - alphaBar_t) eps, eq. (2)
          const reparameterized = map(
            noise,
            (e) => Math.sqrt(alphaBarT) * Math.fround(x0Value) + Math.sqrt(1 - alphaBarT) * e,
          );
          expect(maxAbsDiff(xt, reparameterized)).toBeLessThanOrEqual(float32Tolerance(maxAbs(noise) + 1));
          const mean = xt.data.reduce((s, v) => s + v, 0) / n;
          const variance = xt.data.reduce((s, v) => s + (v - mean) ** 2, 0) / (n - 1);
          const expectedMean = Math.sqrt(alphaBarT) * Math.fround(x0Value);
          const expectedVariance = 1 - alphaBarT;
          // 5 standard errors: sd(mean) = sqrt(v / n), sd(sample variance) = v sqrt(2 / (n - 1)) for a normal
          expect(Math.abs(mean - expectedMean)).toBeLessThanOrEqual(5 * Math.sqrt(expectedVariance / n));
          expect(Math.abs(variance - expectedVariance)).toBeLessThanOrEqual(
            5 * expectedVariance * Math.sqrt(2 / (n - 1)),
          );
        },
      ),
      { numRuns: 10 },
    );
  });
});
