import { describe, expect, test } from "bun:test";
import { gridMixture, moonsMixture, ringMixture } from "../../lib/models/toy_data.ts";
import { Tensor } from "../../lib/core/tensor.ts";
import { TorchGenerator } from "../../lib/core/torch_generator.ts";

describe("toy 2-D mixtures", () => {
  test("the ring's centres lie on the circle, evenly spaced, with equal weights", () => {
    const ring = ringMixture({ count: 8, radius: 0.7, std: 0.06 });
    expect(ring.count).toBe(8);
    for (let k = 0; k < 8; k++) {
      expect(Math.hypot(ring.means[2 * k], ring.means[2 * k + 1])).toBeCloseTo(0.7, 12);
      expect(Math.atan2(ring.means[2 * k + 1], ring.means[2 * k])).toBeCloseTo(
        Math.atan2(Math.sin((Math.PI * k) / 4), Math.cos((Math.PI * k) / 4)),
        12,
      );
      expect(ring.weights[k]).toBeCloseTo(1 / 8, 15);
      expect(ring.noiseVariances[k]).toBeCloseTo(0.0036, 15);
    }
  });

  test("the grid has side^2 centres from -extent to extent", () => {
    const grid = gridMixture({ side: 5, extent: 0.8 });
    expect(grid.count).toBe(25);
    const xs = new Set<number>();
    for (let k = 0; k < 25; k++) xs.add(Math.round(grid.means[2 * k] * 1000) / 1000);
    expect([...xs].sort((a, b) => a - b)).toEqual([-0.8, -0.4, 0, 0.4, 0.8]);
  });

  test("every default distribution keeps 99.99% of its mass inside [-1, 1]^2, where clip_sample does not act", () => {
    // a centre plus 4 standard deviations along each axis, sd_c = sqrt(s2 + sum_j lambda_j Q[c, j]^2), stays inside
    for (const mixture of [ringMixture(), gridMixture(), moonsMixture()]) {
      const r = mixture.rank;
      for (let k = 0; k < mixture.count; k++) {
        for (const c of [0, 1]) {
          let variance = mixture.noiseVariances[k];
          for (let j = 0; j < r; j++) {
            variance += mixture.lowRankVariances[k * r + j] * mixture.bases[(k * 2 + c) * r + j] ** 2;
          }
          expect(Math.abs(mixture.means[2 * k + c]) + 4 * Math.sqrt(variance)).toBeLessThan(1);
        }
      }
    }
  });

  test("the moons form two connected bands: the density between neighbouring centres stays within 3x of the peak", () => {
    const moons = moonsMixture();
    expect(moons.count).toBe(24);
    for (let k = 0; k < 11; k++) {
      const a = [moons.means[2 * k], moons.means[2 * k + 1]];
      const b = [moons.means[2 * k + 2], moons.means[2 * k + 3]];
      const mid = Tensor.from([(a[0] + b[0]) / 2, (a[1] + b[1]) / 2], [1, 2]);
      const peak = moons.logDensity(Tensor.from(a, [1, 2]))[0];
      expect(peak - moons.logDensity(mid)[0]).toBeLessThan(Math.log(3));
    }
  });

  test("samples of the ring sit at radius 0.7 with the stated spread", () => {
    const { samples } = ringMixture().sample(4000, new TorchGenerator(2));
    let sum = 0;
    for (let b = 0; b < 4000; b++) sum += Math.hypot(samples.data[2 * b], samples.data[2 * b + 1]);
    // the radius of a point N(c, 0.06^2 I) with |c| = 0.7 has mean about 0.7 + 0.06^2 / (2 0.7) and sd 0.06
    expect(Math.abs(sum / 4000 - (0.7 + 0.0036 / 1.4))).toBeLessThan(4 * 0.06 / Math.sqrt(4000));
  });

  test("bad options are refused, naming the value", () => {
    expect(() => ringMixture({ count: 0 })).toThrow("ring count must be a positive integer, got 0");
    expect(() => gridMixture({ side: 1 })).toThrow("at least 2 Gaussians per side, got 1");
    expect(() => moonsMixture({ std: -1 })).toThrow("moons std must be a positive number, got -1");
  });
});
