import { describe, expect, test } from "bun:test";
import { builtinMixture } from "../../lib/models/builtin_models.ts";
import { DDIMPipeline } from "../../lib/pipelines/ddim_pipeline.ts";
import { fuse } from "../../lib/pipelines/fuse.ts";
import { lerp, slerp } from "../../lib/pipelines/interpolation.ts";
import { countingZeroModel, standInUNet } from "../_fixtures.ts";
import { imageError } from "../../lib/pipelines/inversion.ts";
import { drawShapes } from "../../lib/models/shapes_dataset.ts";
import { Tensor } from "../../lib/core/tensor.ts";
import { TorchGenerator } from "../../lib/core/torch_generator.ts";

describe("fuse", () => {
  test("alpha 0 and 1 decode each image's own latents; alpha 0.5 lies between the two images", async () => {
    const pipe = await DDIMPipeline.fromPretrained("builtin:shapes32");
    const pair = builtinMixture("shapes32").sample(2, new TorchGenerator(8)).samples;
    const a = new Tensor(pair.data.slice(0, 3072), [1, 3, 32, 32]);
    const b = new Tensor(pair.data.slice(3072), [1, 3, 32, 32]);
    const { fused, alphas, latents } = await fuse(pipe, [a, b], { alpha: [0, 0.5, 1], numInferenceSteps: 50 });
    expect(alphas).toEqual([0, 0.5, 1]);
    expect(fused.shape).toEqual([3, 3, 32, 32]);
    const item = (k: number) => new Tensor(fused.data.slice(k * 3072, (k + 1) * 3072), [1, 3, 32, 32]);
    // slerp at alpha 0 is exactly z0, so the first decode is the deterministic decode of A's latents (up to the
    // float32 rounding of a batch of 3 against a batch of 1 in onnxruntime)
    const decodeA = await pipe.sample({ xT: latents[0], numInferenceSteps: 50, eta: 0, clipSample: false });
    let worst = 0;
    for (let k = 0; k < 3072; k++) worst = Math.max(worst, Math.abs(item(0).data[k] - decodeA.samples.data[k]));
    expect(worst).toBeLessThan(1e-4);
    // each end comes back near its own image and far from the other one
    expect(imageError(item(0), a).mse).toBeLessThan(imageError(item(0), b).mse / 10);
    expect(imageError(item(2), b).mse).toBeLessThan(imageError(item(2), a).mse / 10);
    // the middle differs from both ends
    expect(imageError(item(1), item(0)).mse).toBeGreaterThan(imageError(item(0), a).mse);
    expect(imageError(item(1), item(2)).mse).toBeGreaterThan(imageError(item(2), b).mse);
  }, 60_000);

  test("with EDICT and BDIA, alpha 0 and 1 give the two data images back within 1e-4 MSE", async () => {
    const pipe = await DDIMPipeline.fromPretrained("builtin:shapes32");
    const images = drawShapes(2, { seed: 8 }).images;
    const a = new Tensor(images.data.slice(0, 3072), [1, 3, 32, 32]);
    const b = new Tensor(images.data.slice(3072), [1, 3, 32, 32]);
    for (const method of ["edict", "bdia"] as const) {
      const { fused, states } = await fuse(pipe, [a, b], { alpha: [0, 0.5, 1], numInferenceSteps: 20, method });
      const item = (k: number) => new Tensor(fused.data.slice(k * 3072, (k + 1) * 3072), [1, 3, 32, 32]);
      expect(imageError(item(0), a).mse).toBeLessThan(1e-4);
      expect(imageError(item(2), b).mse).toBeLessThan(1e-4);
      expect(imageError(item(1), a).mse).toBeGreaterThan(1e-4);
      expect(states.map((s) => [s.method, s.state.length])).toEqual([[method, 2], [method, 2]]);
    }
  }, 60_000);

  test("images of different shapes, batches, and alpha outside [0, 1] are refused before the model runs", async () => {
    const { unet, calls } = countingZeroModel(8);
    const pipe = new DDIMPipeline({ unet });
    const image = Tensor.zeros([1, 3, 8, 8]);
    await expect(fuse(pipe, [image, Tensor.zeros([1, 3, 16, 16])])).rejects.toThrow(
      /Cannot fuse images of different shapes: \[1, 3, 8, 8\] and \[1, 3, 16, 16\]/,
    );
    await expect(fuse(pipe, [Tensor.zeros([2, 3, 8, 8]), Tensor.zeros([2, 3, 8, 8])])).rejects.toThrow(
      /single images of shape \[1, C, H, W\], got \[2, 3, 8, 8\]/,
    );
    await expect(fuse(pipe, [image, image], { alpha: 1.5 })).rejects.toThrow(/alpha in \[0, 1\], got 1.5/);
    await expect(fuse(pipe, [Tensor.zeros([1, 3, 4, 4]), Tensor.zeros([1, 3, 4, 4])])).rejects.toThrow(
      /image has shape \[2, 3, 4, 4\] but the model takes \[2, 3, 8, 8\]/,
    );
    // deno-lint-ignore no-explicit-any
    await expect(fuse(pipe, [image, image], { method: "lerp" as any })).rejects.toThrow(
      `fuse inverts with method "ddim", "edict" or "bdia", got "lerp"; the interpolation is chosen with interpolation: "lerp"`,
    );
    await expect(fuse(pipe, [image, image], { method: "bdia", gamma: 0 })).rejects.toThrow(
      "BDIA with gamma = 0 is DDIM",
    );
    expect(calls()).toBe(0);
  });
});

describe("fuse mixes the latents by slerp, as the paper does", () => {
  test("the decode at alpha 0.5 is the decode of slerp(x_T^(a), x_T^(b), 0.5), not of lerp", async () => {
    const unet = standInUNet();
    const pipe = new DDIMPipeline({ unet });
    const a = new Tensor(Float32Array.from({ length: 48 }, (_, k) => Math.sin(0.7 * k)), [1, 3, 4, 4]);
    const b = new Tensor(Float32Array.from({ length: 48 }, (_, k) => Math.cos(1.9 * k + 0.3)), [1, 3, 4, 4]);
    const { fused, latents } = await fuse(pipe, [a, b], { alpha: 0.5, numInferenceSteps: 10 });
    const decode = async (xT: Tensor) =>
      (await pipe.sample({ xT, numInferenceSteps: 10, eta: 0, clipSample: false })).samples;
    const bySlerp = await decode(slerp(latents[0], latents[1], 0.5));
    const byLerp = await decode(lerp(latents[0], latents[1], 0.5));
    expect(Array.from(fused.data)).toEqual(Array.from(bySlerp.data));
    let gap = 0;
    for (let k = 0; k < fused.size; k++) gap = Math.max(gap, Math.abs(fused.data[k] - byLerp.data[k]));
    expect(gap).toBeGreaterThan(1e-3);
  });
});
