import { describe, expect, test } from "bun:test";
import { drawShapes, renderShapes, SHAPE_KINDS, shapesMixture } from "../../lib/models/shapes_dataset.ts";

const PLANE = 32 * 32;

describe("shapes data set", () => {
  test("is deterministic from the seed, and another seed gives other images", () => {
    const a = drawShapes(6, { seed: 9 }).images.data;
    const b = drawShapes(6, { seed: 9 }).images.data;
    const c = drawShapes(6, { seed: 10 }).images.data;
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
    expect(Buffer.from(a.buffer).equals(Buffer.from(c.buffer))).toBe(false);
  });

  test("images are [n, 3, 32, 32] in [-1, 1], kinds in turn", () => {
    const { images, params } = drawShapes(12, { seed: 1 });
    expect(images.shape).toEqual([12, 3, 32, 32]);
    for (const v of images.data) {
      expect(v).toBeGreaterThanOrEqual(-1);
      expect(v).toBeLessThanOrEqual(1);
    }
    expect(params.map((p) => p.mode)).toEqual([0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5]);
  });

  test("the centre pixel has the shape's colour and the corner the background's, to 8-bit precision", () => {
    const params = SHAPE_KINDS.map((_, mode) => ({
      mode,
      offset: [0, 0] as [number, number],
      scale: 1,
      fg: [0.6, -0.2, 0.4] as [number, number, number],
      bg: [-0.8, -0.5, 0.1] as [number, number, number],
    }));
    const images = renderShapes(params);
    const centre = 15 * 32 + 15; // inside every shape
    for (let i = 0; i < params.length; i++) {
      for (let c = 0; c < 3; c++) {
        expect(Math.abs(images.data[(i * 3 + c) * PLANE + centre] - params[i].fg[c])).toBeLessThanOrEqual(1 / 127.5);
        expect(Math.abs(images.data[(i * 3 + c) * PLANE] - params[i].bg[c])).toBeLessThanOrEqual(1 / 127.5);
      }
    }
  });

  test("the fitted mixture assigns held-out images to their own kind", () => {
    const mixture = shapesMixture({ rank: 8, samplesPerMode: 32 });
    const { images, params } = drawShapes(30, { seed: 77 });
    const weights = mixture.posteriorWeights(images.reshape([30, 3 * PLANE]), 1);
    for (let b = 0; b < 30; b++) {
      const row = Array.from(weights.subarray(b * 6, b * 6 + 6));
      expect(row.indexOf(Math.max(...row))).toBe(params[b].mode);
    }
  });

  test("the per-kind mixture explains held-out images better than one Gaussian of the same rank", () => {
    const perKind = shapesMixture({ rank: 8, samplesPerMode: 32 });
    const single = shapesMixture({ rank: 8, samplesPerMode: 16, single: true });
    const { images } = drawShapes(12, { seed: 78 });
    const flat = images.reshape([12, 3 * PLANE]);
    const a = perKind.logDensity(flat).reduce((s, v) => s + v, 0);
    const b = single.logDensity(flat).reduce((s, v) => s + v, 0);
    expect(a).toBeGreaterThan(b);
  });

  test("bad arguments are refused, naming the value", () => {
    expect(() => drawShapes(0)).toThrow("positive integer, got 0");
    expect(() => drawShapes(2, { mode: 6 })).toThrow("integer in [0, 5], got 6");
    expect(() => shapesMixture({ rank: 12, samplesPerMode: 10 })).toThrow("above rank + 1 = 13, got 10");
  });
});
