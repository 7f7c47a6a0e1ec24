import { describe, expect, test } from "bun:test";
import * as ort from "onnxruntime-node";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { readSafetensors } from "../../lib/models/safetensors.ts";
import { parseUNetConfig } from "../../lib/models/unet_config.ts";
import { compileUNet, weightsFromTensors } from "../../lib/models/unet_onnx.ts";

// Per-block outputs of diffusers' UNet2DModel (forward hooks, commit 58eb52c, PyTorch 1.13): intermediates.safetensors
const fixtures = fileURLToPath(new URL("../fixtures/unet/", import.meta.url));

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe("compileUNet", () => {
  for (const name of ["tiny-ddpm", "tiny-fourier"]) {
    test(`${name}: every top-level block matches diffusers' intermediate outputs within 1e-4`, async () => {
      const dir = `${fixtures}${name}/`;
      const config = parseUNetConfig(JSON.parse(readFileSync(`${dir}config.json`, "utf8")));
      const weights = weightsFromTensors(readSafetensors(`${dir}diffusion_pytorch_model.safetensors`).tensors, name);
      const session = await ort.InferenceSession.create(compileUNet(config, weights, { debugOutputs: true }));
      expect(weights.unused()).toEqual([]); // every weight of the checkpoint is used
      const io = readSafetensors(`${dir}io.safetensors`).tensors;
      const sample = io.get("sample")!;
      const out = await session.run({
        sample: new ort.Tensor("float32", sample.data, sample.shape),
        timestep: new ort.Tensor("float32", io.get("timestep_f32")!.data, [2]),
      });
      const intermediates = readSafetensors(`${dir}intermediates.safetensors`).tensors;
      expect(intermediates.size).toBe(11);
      for (const [block, expected] of intermediates) {
        const got = out[`debug:${block}`];
        expect(got.dims).toEqual(expected.shape);
        expect(maxAbsDiff(got.data as Float32Array, expected.data)).toBeLessThan(1e-4);
      }
      await session.release();
    });
  }

  test("foldAttentionScale (1/sqrt(d) folded into the query weights) still matches diffusers within 1e-4", async () => {
    // tiny-ddpm has one head of 64 channels (scale 1/8); tiny-fourier heads of 8 (scale 1/sqrt(8)), README.txt
    for (const name of ["tiny-ddpm", "tiny-fourier"]) {
      const dir = `${fixtures}${name}/`;
      const config = parseUNetConfig(JSON.parse(readFileSync(`${dir}config.json`, "utf8")));
      const weights = weightsFromTensors(readSafetensors(`${dir}diffusion_pytorch_model.safetensors`).tensors, name);
      const session = await ort.InferenceSession.create(compileUNet(config, weights, { foldAttentionScale: true }));
      const io = readSafetensors(`${dir}io.safetensors`).tensors;
      const sample = io.get("sample")!;
      const out = await session.run({
        sample: new ort.Tensor("float32", sample.data, sample.shape),
        timestep: new ort.Tensor("float32", io.get("timestep_f32")!.data, [2]),
      });
      expect(maxAbsDiff(out[session.outputNames[0]].data as Float32Array, io.get("expected")!.data)).toBeLessThan(1e-4);
      await session.release();
    }
  });

  test("a missing weight or a wrong shape is named", () => {
    const dir = `${fixtures}tiny-ddpm/`;
    const config = parseUNetConfig(JSON.parse(readFileSync(`${dir}config.json`, "utf8")));
    const tensors = readSafetensors(`${dir}diffusion_pytorch_model.safetensors`).tensors;
    const missing = new Map(tensors);
    missing.delete("mid_block.resnets.1.conv2.bias");
    expect(() => compileUNet(config, weightsFromTensors(missing, "ckpt"))).toThrow(
      "ckpt has no weight mid_block.resnets.1.conv2.bias (expected shape [64])",
    );
    const wrong = new Map(tensors);
    wrong.set("conv_in.weight", { dtype: "F32", shape: [32, 4, 3, 3], data: new Float32Array(32 * 4 * 9) });
    expect(() => compileUNet(config, weightsFromTensors(wrong, "ckpt"))).toThrow(
      "ckpt: weight conv_in.weight has shape [32, 4, 3, 3] but the config needs [32, 3, 3, 3]",
    );
  });

  test("parseUNetConfig refuses unsupported values, naming the key and the value", () => {
    const base = JSON.parse(readFileSync(`${fixtures}tiny-ddpm/config.json`, "utf8"));
    const cases: [Record<string, unknown>, RegExp][] = [
      [
        { down_block_types: ["DownBlock2D", "SkipDownBlock2D"] },
        /down_block_types = .*"SkipDownBlock2D" is not supported/,
      ],
      [{ resnet_time_scale_shift: "scale_shift" }, /resnet_time_scale_shift = "scale_shift"/],
      [{ time_embedding_type: "learned" }, /time_embedding_type = "learned"/],
      [{ act_fn: "mish" }, /act_fn = "mish"/],
      [{ class_embed_type: "timestep" }, /class_embed_type = "timestep"/],
      [{ norm_num_groups: 5 }, /norm_num_groups = 5 .*32 is not a multiple/],
      [{ _class_name: "UNet2DConditionModel" }, /_class_name = "UNet2DConditionModel"/],
      [{ cross_attention_dim: 768 }, /cross_attention_dim = 768 \(this UNet2DModel option is not supported\)/],
      [{ up_block_types: ["UpBlock2D"] }, /up_block_types = \["UpBlock2D"\]/],
      // sizes past the documented limits, refused before any weight is read
      [{ sample_size: 100000 }, /sample_size = 100000 \(more than the limit of 8192\)/],
      [{ sample_size: [64, 9000] }, /sample_size = \[64,9000\] \(more than the limit of 8192\)/],
      [{ in_channels: 1e6 }, /in_channels = 1000000 \(more than the limit of 16384\)/],
      [{ out_channels: 20000 }, /out_channels = 20000 \(more than the limit of 16384\)/],
      [
        { block_out_channels: [32, 1048576] },
        /block_out_channels = \[32,1048576\] \(an entry is more than the limit of 16384\)/,
      ],
    ];
    for (const [change, message] of cases) {
      expect(() => parseUNetConfig({ ...base, ...change }, "cfg")).toThrow(message);
    }
    // the google/ddpm-* configs (diffusers 0.0.4, fewer keys) parse with diffusers' defaults
    const cifar = parseUNetConfig(JSON.parse(readFileSync(`${fixtures}configs/google-ddpm-cifar10-32.json`, "utf8")));
    expect(cifar.timeEmbeddingDim).toBe(512);
    expect(cifar.attnNormNumGroups).toBe(32);
  });
});
