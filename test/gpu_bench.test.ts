import { describe, expect, test } from "bun:test";
import { benchGpu, compareOutputs, GPU_MAX_ABS_FRACTION, GPU_REL_L2_TOLERANCE } from "../bench/gpu.ts";

const quiet = () => {};

describe("bench/gpu.ts", () => {
  test("compareOutputs passes equal outputs and fails a difference beyond the float32 tolerance", () => {
    const cpu = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i));
    expect(compareOutputs(cpu.slice(), cpu)).toMatchObject({ maxAbsDiff: 0, relL2: 0, pass: true });
    // One element off by 5% of max |cpu|: max abs exceeds 1e-2 max |cpu|.
    const spike = cpu.slice();
    spike[7] += 0.05;
    expect(compareOutputs(spike, cpu).pass).toBe(false);
    // Every element scaled by (1 + 1e-4): relative L2 1e-4, within both bounds.
    const scaled = cpu.map((v) => v * (1 + 1e-4));
    const close = compareOutputs(scaled, cpu);
    expect(close.relL2).toBeCloseTo(1e-4, 6);
    expect(close.pass).toBe(true);
    // Scaled by (1 + 2e-3): relative L2 2e-3 > 1e-3.
    expect(compareOutputs(cpu.map((v) => v * (1 + 2e-3)), cpu).pass).toBe(false);
    expect(GPU_REL_L2_TOLERANCE).toBe(1e-3);
    expect(GPU_MAX_ABS_FRACTION).toBe(1e-2);
  });

  test("compareOutputs fails a NaN and rejects outputs of different sizes", () => {
    const cpu = new Float32Array([1, 2, 3]);
    const withNaN = new Float32Array([1, Number.NaN, 3]);
    expect(compareOutputs(withNaN, cpu).pass).toBe(false);
    expect(() => compareOutputs(new Float32Array(2), cpu)).toThrow("Outputs differ in size: 2 against 3");
  });

  test("benchGpu with the CPU provider returns one well-formed timing per batch for builtin:shapes32", async () => {
    const result = await benchGpu({ models: ["shapes32"], cpuOnly: true, quick: true, batches: [1, 2], log: quiet });
    expect(result.webgpu.tried).toBe(false);
    expect(result.checks).toEqual([]);
    expect(result.timings.map((t) => [t.model, t.provider, t.batch])).toEqual([["shapes32", "cpu", 1], [
      "shapes32",
      "cpu",
      2,
    ]]);
    for (const t of result.timings) {
      expect(t.predictMs).toBeGreaterThan(0);
      expect(t.ddimStepsRun).toBe(50);
      expect(t.extrapolated).toBe(false);
      expect(t.imagesPerSecond).toBeCloseTo(t.batch / t.ddimSeconds, 10);
    }
    expect(result.markdown).toContain("| shapes32 | cpu | 2 |");
  }, 60_000);

  test("benchGpu reports a WebGPU failure with its error and still measures the CPU provider", async () => {
    const result = await benchGpu({ models: ["shapes32"], quick: true, batches: [1], probe: false, log: quiet });
    expect(result.timings.some((t) => t.provider === "cpu")).toBe(true);
    if (result.webgpu.ok) {
      // A machine with a WebGPU adapter: the check against the CPU output must have run and passed.
      expect(result.checks).toHaveLength(1);
      expect(result.checks[0].pass).toBe(true);
    } else {
      expect(result.webgpu.failures.length).toBeGreaterThan(0);
      expect(result.webgpu.failures[0].error).toContain("WebGPU");
      expect(result.markdown).toContain("WebGPU: FAILED");
      expect(result.onnxruntime).toMatch(/^\d+\.\d+\.\d+$/);
    }
  }, 60_000);

  test("benchGpu rejects an unknown model and a bad batch size", async () => {
    await expect(benchGpu({ models: ["cifar10-32" as never], log: quiet })).rejects.toThrow(
      'Unknown model "cifar10-32"',
    );
    await expect(benchGpu({ models: ["shapes32"], batches: [0], log: quiet })).rejects.toThrow("got 0");
  });
});
