import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { loadUNet } from "../../lib/models/load.ts";
import { Tensor } from "../../lib/core/tensor.ts";
import { expectFixtureCases, fixtures, io } from "./_unet_fixtures.ts";

describe("the ONNX adapter runs an exported graph as diffusers does (within 1e-4)", () => {
  test("tiny-ddpm: torch.onnx.export's model.onnx (int64 [batch] timestep, dynamic batch)", async () => {
    const unet = await loadUNet(join(fixtures, "tiny-ddpm", "model.onnx"));
    expect(unet.signature).toMatchObject({
      sampleName: "sample",
      timestepName: "timestep",
      outputName: "out_sample",
      timestepType: "int64",
      timestepRank: 1,
      batch: "dynamic",
    });
    expect(unet.sampleSize).toBe(16); // from the config.json beside it
    await expectFixtureCases(unet, "tiny-ddpm");
    await expect(unet.predict(io("tiny-ddpm").sample, 10.5)).rejects.toThrow(/int64 timesteps but got 10.5/);
    unet.dispose();
  });
});

describe("the adapter refuses bad input with a clear error", () => {
  test("a sample whose channels or size do not fit, or a wrong number of timesteps", async () => {
    const unet = await loadUNet(join(fixtures, "tiny-ddpm"), { cacheDir: false });
    await expect(unet.predict(Tensor.zeros([1, 4, 16, 16]), 1)).rejects.toThrow(/4 channels but the UNet takes 3/);
    await expect(unet.predict(Tensor.zeros([1, 3, 16, 15]), 1)).rejects.toThrow(/width 15 does not fit.*multiple of 2/);
    await expect(unet.predict(Tensor.zeros([3, 16, 16]), 1)).rejects.toThrow(
      /shape \[batch, 3, height, width\], got \[3, 16, 16\]/,
    );
    await expect(unet.predict(Tensor.zeros([2, 3, 16, 16]), [1, 2, 3])).rejects.toThrow(/3 timesteps for a batch of 2/);
    await expect(unet.predict(Tensor.zeros([1, 3, 16, 16]), NaN)).rejects.toThrow(/finite number, got NaN/);
    unet.dispose();
    await expect(unet.predict(Tensor.zeros([1, 3, 16, 16]), 1)).rejects.toThrow(/disposed/);
  });

  test("webgpu gives a clear error where the machine has no adapter, and unknown providers are refused", async () => {
    const file = join(fixtures, "tiny-ddpm", "model.onnx");
    await expect(loadUNet(file, { executionProvider: "cuda" as "cpu" })).rejects.toThrow(
      /Unknown executionProvider "cuda"/,
    );
    try {
      const unet = await loadUNet(file, { executionProvider: "webgpu" });
      unet.dispose(); // a machine with WebGPU: loading works
    } catch (error) {
      expect(String(error)).toMatch(/WebGPU execution provider is not available on this machine/);
    }
  });
});
