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
});
