/**
 * diffusers' own scheduler-test inputs (tests/schedulers/test_schedulers.py, SchedulerCommonTest): `dummy_model`,
 * `dummy_sample_deter` and `dummy_noise_deter`, so their published full-loop sums can be reproduced.
 *
 * @module
 */
import { Tensor } from "../lib/core/tensor.ts";
import type { Scheduler } from "../lib/schedulers/scheduler.ts";

const BATCH = 4, CHANNELS = 3, HEIGHT = 8, WIDTH = 8;
const COUNT = BATCH * CHANNELS * HEIGHT * WIDTH;

/** arange(n) (flipped for the noise) reshaped (C, H, W, B), divided by n, permuted to (B, C, H, W). */
function deterministic(flip: boolean): Tensor {
  const out = new Float32Array(COUNT);
  for (let b = 0; b < BATCH; b++) {
    for (let c = 0; c < CHANNELS; c++) {
      for (let h = 0; h < HEIGHT; h++) {
        for (let w = 0; w < WIDTH; w++) {
          const source = ((c * HEIGHT + h) * WIDTH + w) * BATCH + b; // index in the (C, H, W, B) layout
          const value = flip ? COUNT - 1 - source : source;
          out[((b * CHANNELS + c) * HEIGHT + h) * WIDTH + w] = value / COUNT;
        }
      }
    }
  }
  return new Tensor(out, [BATCH, CHANNELS, HEIGHT, WIDTH]);
}

/** diffusers' `dummy_sample_deter`. */
export function diffusersSampleDeter(): Tensor {
  return deterministic(false);
}

/** diffusers' `dummy_noise_deter`. */
export function diffusersNoiseDeter(): Tensor {
  return deterministic(true);
}

/** diffusers' `dummy_model`: sample * t / (t + 1), in float32. */
export function diffusersDummyModel(sample: Tensor, t: number): Tensor {
  const factor = Math.fround(t / (t + 1));
  return new Tensor(sample.data.map((v) => v * factor), sample.shape);
}

/** sum |x| and mean |x|, as the published tests report them. */
export function sumAndMeanAbs(x: Tensor): { sum: number; mean: number } {
  let sum = 0;
  for (const v of x.data) sum += Math.abs(v);
  return { sum, mean: sum / x.size };
}

/** A sigma sampler as diffusers' Euler and Heun tests drive it: a scheduler that can also noise a sample to t. */
type SigmaTestScheduler<Options extends object> = Scheduler<Options> & {
  addNoise(sample: Tensor, noise: Tensor, timestep: number): Tensor;
};

/**
 * diffusers' `full_loop` of test_scheduler_euler.py and test_scheduler_heun.py (n = 10 inference steps already set):
 * x = dummy_sample_deter * init_noise_sigma, then scale_model_input, dummy_model and step at every timestep. With
 * noise (test_full_loop_with_noise), the loop starts at timesteps[(n - 2) * order] from dummy_noise_deter added there.
 */
export function sigmaFullLoop<Options extends object>(
  scheduler: SigmaTestScheduler<Options>,
  options: { withNoise?: boolean; stepOptions?: Options } = {},
): Tensor {
  const deter = diffusersSampleDeter();
  let x = new Tensor(deter.data.map((v) => v * scheduler.initNoiseSigma), deter.shape);
  let timesteps = [...scheduler.timesteps];
  if (options.withNoise) {
    timesteps = timesteps.slice((10 - 2) * scheduler.order);
    x = scheduler.addNoise(x, diffusersNoiseDeter(), timesteps[0]);
  }
  for (const t of timesteps) {
    x = scheduler.scaleModelInput(x, t);
    x = scheduler.step(diffusersDummyModel(x, t), t, x, options.stepOptions).prevSample;
  }
  return x;
}
