import { describe, expect, test } from "bun:test";
import {
  alphasCumprod,
  type BetaSchedule,
  betaSchedule,
  linspaceFloat32,
  rescaleZeroTerminalSnr,
  roundHalfEven,
  spacedTimesteps,
  type TimestepSpacing,
} from "../../lib/math/schedules.ts";
import { schedulerFixtures } from "../_fixtures.ts";

describe("schedules", () => {
  test("alphasCumprod matches diffusers' table for every beta schedule, with and without zero-SNR rescaling (2e-5 rel)", () => {
    const cases = schedulerFixtures().alphas_cumprod;
    expect(cases.length).toBe(6);
    for (const { config, alphas_cumprod: expected } of cases) {
      let betas = betaSchedule(config.beta_schedule as BetaSchedule);
      if (config.rescale_betas_zero_snr) betas = rescaleZeroTerminalSnr(betas);
      const actual = alphasCumprod(betas);
      expect(actual.length).toBe(expected.length);
      for (let t = 0; t < actual.length; t++) {
        expect(Math.abs(actual[t] - expected[t])).toBeLessThanOrEqual(2e-5 * Math.abs(expected[t]));
      }
    }
  });

  test("zero-SNR rescaling ends alpha-bar at exactly 0 and keeps alpha-bar_0 (arXiv 2305.08891, Algorithm 1)", () => {
    const betas = betaSchedule("scaled_linear", { betaStart: 0.00085, betaEnd: 0.012 });
    const before = alphasCumprod(betas);
    const after = alphasCumprod(rescaleZeroTerminalSnr(betas));
    expect(after[999]).toBe(0);
    expect(Math.abs(after[0] - before[0])).toBeLessThan(1e-6);
  });

  test("setTimesteps timesteps match diffusers exactly for every spacing, offset, T and n in the fixture", () => {
    let checked = 0;
    for (const c of schedulerFixtures().timesteps) {
      if (c.error !== undefined) continue;
      const spacing = c.config.timestep_spacing as TimestepSpacing;
      const options = {
        numTrainTimesteps: c.config.num_train_timesteps as number,
        stepsOffset: c.config.steps_offset as number,
      };
      const ts = spacedTimesteps(spacing, c.n, options);
      expect(c.scheduler === "ddim_inverse" ? ts.reverse() : ts).toEqual(c.timesteps!);
      checked++;
    }
    expect(checked).toBeGreaterThan(200);
  });

  test("trailing spacing rounds ties to even as numpy does: n = 16 gives 811, not 812", () => {
    // diffusers: np.round(np.arange(1000, 0, -1000 / 16)) - 1. arange gives 1000 - 62.5 k; the ties 937.5, 812.5,
    // 687.5, ... round to the even neighbour (938, 812, 688, ...), worked out by hand from numpy's rule
    expect(spacedTimesteps("trailing", 16)).toEqual([
      999,
      937,
      874,
      811,
      749,
      687,
      624,
      561,
      499,
      437,
      374,
      311,
      249,
      187,
      124,
      61,
    ]);
  });

  test("the sigmoid beta schedule is diffusers' sigmoid(linspace(-6, 6, T)) (beta_end - beta_start) + beta_start", () => {
    // diffusers scheduling_ddpm.py, beta_schedule == "sigmoid": betas = torch.linspace(-6, 6, T);
    // betas = torch.sigmoid(betas) * (beta_end - beta_start) + beta_start, in float32; computed here in float64
    for (const [T, betaStart, betaEnd] of [[1000, 0.0001, 0.02], [10, 0.001, 0.5]]) {
      const betas = betaSchedule("sigmoid", { numTrainTimesteps: T, betaStart, betaEnd });
      expect(betas.length).toBe(T);
      for (let t = 0; t < T; t++) {
        const x = -6 + (12 * t) / (T - 1);
        const expected = (betaEnd - betaStart) / (1 + Math.exp(-x)) + betaStart;
        expect(Math.abs(betas[t] - expected)).toBeLessThan(4e-7 * Math.max(expected, 1e-3) + 1e-9);
      }
    }
    // the end points: sigmoid(+-6) = 0.9975274 and 0.0024726
    const ends = betaSchedule("sigmoid", { numTrainTimesteps: 1000, betaStart: 0.0001, betaEnd: 0.02 });
    expect(ends[0]).toBeCloseTo(0.0001 + 0.0199 * 0.0024726232, 8); // float32: about 1e-9 off
    expect(ends[999]).toBeCloseTo(0.0001 + 0.0199 * 0.9975273768, 8);
  });

  test("linspaceFloat32 is exact at both ends and symmetric in how it rounds", () => {
    const x = linspaceFloat32(0.0001, 0.02, 1000);
    expect(x[0]).toBe(Math.fround(0.0001));
    expect(x[999]).toBe(Math.fround(0.02));
    expect(Array.from(linspaceFloat32(2, 3, 1))).toEqual([2]);
  });

  test("roundHalfEven rounds ties to even, as numpy.round", () => {
    expect([0.5, 1.5, 2.5, 499.5, -1.5, 2.4, 2.6].map(roundHalfEven)).toEqual([0, 2, 2, 500, -2, 2, 3]);
  });

  test("quad spacing is the official DDIM code's floor(linspace(0, sqrt(0.8 T), S)^2), descending", () => {
    // ermongroup/ddim runners/diffusion.py, skip_type "quad": S = 10, T = 1000
    const expected = Array.from({ length: 10 }, (_, i) => Math.trunc((i * Math.sqrt(800) / 9) ** 2));
    const ts = spacedTimesteps("quad", 10);
    expect(ts[ts.length - 1]).toBe(0);
    expect(ts[0]).toBe(Math.trunc(Math.sqrt(800) ** 2));
    expect(ts.slice(1, 9)).toEqual(expected.slice(1, 9).reverse());
    expect(() => spacedTimesteps("quad", 50)).toThrow(/repeats timestep/);
  });

  test("trailing spacing follows numpy's float arange rule but drops the spurious timestep -1 diffusers returns", () => {
    // np.arange(1000, 0, -1000/3) has ceil(3.0) = 3 entries: 1000, 666.67, 333.33 -> 999, 666, 332 (diffusers)
    expect(spacedTimesteps("trailing", 3)).toEqual([999, 666, 332]);
    // np.arange(1000, 0, -1000/223) has ceil(223.00000000000003) = 224 entries, the last -1.1e-13 (numpy 1.x/2.x),
    // which diffusers turns into timestep -1; here n = 223 gives 223 timesteps ending at 3
    const ts = spacedTimesteps("trailing", 223);
    expect(ts.length).toBe(223);
    expect(ts[222]).toBe(3);
    for (let n = 1; n <= 1000; n++) expect(spacedTimesteps("trailing", n).length).toBe(n);
  });

  test("unknown schedules and spacings are refused, naming the value", () => {
    expect(() => betaSchedule("cosine" as BetaSchedule)).toThrow(/"cosine"/);
    expect(() => spacedTimesteps("even" as TimestepSpacing, 10)).toThrow(/"even"/);
    expect(() => spacedTimesteps("leading", 1001)).toThrow(/1001/);
    expect(() => spacedTimesteps("leading", 0)).toThrow(/got 0/);
  });
});
