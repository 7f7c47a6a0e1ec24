import { describe, expect, test } from "bun:test";
import { Tensor } from "../../lib/core/tensor.ts";

describe("Tensor", () => {
  test("splitBatch gives each batch item as a copy of batch size 1, in order", () => {
    const x = Tensor.from(Array.from({ length: 12 }, (_, i) => i), [3, 2, 2]);
    const items = x.splitBatch();
    expect(items.map((t) => t.shape)).toEqual([[1, 2, 2], [1, 2, 2], [1, 2, 2]]);
    expect(items.map((t) => [...t.data])).toEqual([[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]);
    items[0].data[0] = 99;
    expect(x.data[0]).toBe(0);
  });

  test("a tensor's shape is frozen and independent of the array it was given", () => {
    const dims = [2, 3];
    const x = new Tensor(new Float32Array(6), dims);
    dims[0] = 3;
    expect(x.shape).toEqual([2, 3]);
    expect(Object.isFrozen(x.shape)).toBe(true);
    expect(() => (x.shape as number[]).push(1)).toThrow();
  });

  test("a tensor made with another tensor's (frozen) shape shares it, and still checks it against the data", () => {
    const x = Tensor.zeros([4, 2]);
    expect(new Tensor(new Float32Array(8), x.shape).shape).toBe(x.shape);
    expect(() => new Tensor(new Float32Array(7), x.shape)).toThrow(
      "Tensor shape [4, 2] holds 8 elements but the data has 7",
    );
  });

  test("a shape with a negative or fractional dimension is refused, naming the axis", () => {
    expect(() => new Tensor(new Float32Array(0), [2, -1])).toThrow("invalid dimension -1 at axis 1");
    expect(() => new Tensor(new Float32Array(3), [1.5, 2])).toThrow("invalid dimension 1.5 at axis 0");
  });
});
