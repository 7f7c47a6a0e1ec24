import { describe, expect, test } from "bun:test";
import { DDIMInverseScheduler } from "../../lib/schedulers/ddim_inverse.ts";
import { DDIMScheduler } from "../../lib/schedulers/ddim.ts";
import { caseLabel, fixtureSample, maxAbsDiff, schedulerFixtures, standInModel } from "../_fixtures.ts";
import { schedulerSuite } from "../_scheduler_suite.ts";
import { diffusersDummyModel, diffusersSampleDeter, sumAndMeanAbs } from "../_diffusers_dummies.ts";
import { Tensor } from "../../lib/core/tensor.ts";

schedulerSuite({
  name: "DDIMInverseScheduler",
  fromConfig: (c) => DDIMInverseScheduler.fromConfig(c),
  ascending: true,
});

describe("DDIMInverseScheduler against diffusers", () => {
  const fx = schedulerFixtures();
  for (const loop of fx.loops.filter((l) => l.scheduler === "ddim_inverse")) {
    test(`ddim_inverse loop matches diffusers within 1e-4: ${caseLabel(loop)}`, () => {
      const scheduler = DDIMInverseScheduler.fromConfig(loop.config);
      scheduler.setTimesteps(loop.n);
      let x = fixtureSample();
      for (const t of scheduler.timesteps) x = scheduler.step(standInModel(x, t), t, x).prevSample;
      expect(maxAbsDiff(x.data, loop.final)).toBeLessThan(1e-4);
    });
  }

  test("linspace spacing is refused, as diffusers refuses it (fixture error entries)", () => {
    const refused = fx.timesteps.filter((c) => c.scheduler === "ddim_inverse" && c.error !== undefined);
    expect(refused.length).toBeGreaterThan(0);
    for (const c of refused) {
      expect(() => {
        const scheduler = DDIMInverseScheduler.fromConfig(c.config);
        scheduler.setTimesteps(c.n);
      }).toThrow(/"linspace"/);
    }
  });

  // diffusers tests/schedulers/test_scheduler_ddim_inverse.py, full_loop (n = 10, dummy_model, dummy_sample_deter);
  // tolerances 1e-2 (sum) and 1e-3 (mean) of |x|
  const published: [string, Record<string, unknown>, number, number][] = [
    ["test_full_loop_no_noise", {}, 671.6816, 0.8746],
    ["test_full_loop_with_v_prediction", { prediction_type: "v_prediction" }, 1394.2185, 1.8154],
    ["test_full_loop_with_set_alpha_to_one", { set_alpha_to_one: true, beta_start: 0.01 }, 539.9622, 0.7031],
    ["test_full_loop_with_no_set_alpha_to_one", { set_alpha_to_one: false, beta_start: 0.01 }, 542.6722, 0.7066],
  ];
  for (const [name, overrides, sum, mean] of published) {
    test(`diffusers' ${name}: sum |x| ${sum}, mean ${mean}`, () => {
      const scheduler = DDIMInverseScheduler.fromConfig({ clip_sample: true, ...overrides });
      scheduler.setTimesteps(10);
      let x = diffusersSampleDeter();
      for (const t of scheduler.timesteps) x = scheduler.step(diffusersDummyModel(x, t), t, x).prevSample;
      const result = sumAndMeanAbs(x);
      expect(Math.abs(result.sum - sum)).toBeLessThan(1e-2);
      expect(Math.abs(result.mean - mean)).toBeLessThan(1e-3);
    });
  }
});

describe("DDIMInverseScheduler beyond diffusers", () => {
  test("an inverse step undoes a DDIM step with the same eps (eq. 12 with eta = 0 is invertible)", () => {
    const ddim = DDIMScheduler.fromConfig({ clip_sample: false, timestep_spacing: "trailing" });
    const inverse = DDIMInverseScheduler.fromConfig({ clip_sample: false, timestep_spacing: "trailing" });
    ddim.setTimesteps(7);
    inverse.setTimesteps(7);
    expect([...inverse.timesteps]).toEqual([...ddim.timesteps].reverse());
    const x = fixtureSample([1, 3, 4, 4]);
    const eps = new Tensor(x.data.map((v) => Math.sin(5 * v)), x.shape);
    // DDIM from 856 to 713 (the true previous entry), then inversion from 713 back up to 856
    const down = ddim.step(eps, 856, x).prevSample;
    const up = inverse.step(eps, 856, down).prevSample;
    expect(inverse.previousTimestep(856)).toBe(713);
    expect(maxAbsDiff(up.data, x.data)).toBeLessThan(1e-5);
  });

  test("the deprecated set_alpha_to_zero key is read as set_alpha_to_one, as diffusers does", () => {
    expect(DDIMInverseScheduler.fromConfig({ set_alpha_to_zero: false }).initialAlphaCumprod).not.toBe(1);
  });
});
