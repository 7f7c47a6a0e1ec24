import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  builtinCheckpointDir,
  builtinCheckpointFolder,
  builtinMixture,
  builtinModel,
  builtinTrainingLog,
  listBuiltinModels,
} from "../../lib/models/builtin_models.ts";
import { DDIMPipeline } from "../../lib/pipelines/ddim_pipeline.ts";
import { DDPMScheduler } from "../../lib/schedulers/ddpm.ts";
import { reconstruct } from "../../lib/pipelines/inversion.ts";
import { drawShapes } from "../../lib/models/shapes_dataset.ts";
import { readSafetensors } from "../../lib/models/safetensors.ts";
import { Tensor } from "../../lib/core/tensor.ts";
import { TorchGenerator } from "../../lib/core/torch_generator.ts";
import { fromPretrained, loadUNet } from "../../lib/models/load.ts";
import { parseUNetConfig } from "../../lib/models/unet_config.ts";
import { compileUNet, weightsFromTensors } from "../../lib/models/unet_onnx.ts";

// The shipped trained checkpoint. Its export_check.safetensors holds PyTorch's float32 outputs of the same weights,
// recorded by tools/train_ddpm.py at export (tools/diffusers_unet.py matches diffusers' UNet2DModel to 2.4e-6 on
// diffusers' own tiny-ddpm fixture, see tools/README.md).
const NAME = "ddpm-shapes32";
const dir = builtinCheckpointDir(NAME)!;
const cacheDir = mkdtempSync(join(tmpdir(), "ddimlab-learned-"));
afterAll(() => rmSync(cacheDir, { recursive: true, force: true }));

// Every UNet2DModel constructor key, as diffusers' ConfigMixin saves them (diffusers 0.30+, src/diffusers/models/
// unets/unet_2d.py), plus the two bookkeeping keys.
const UNET2D_KEYS = [
  "_class_name",
  "_diffusers_version",
  "act_fn",
  "add_attention",
  "attention_head_dim",
  "attn_norm_num_groups",
  "block_out_channels",
  "center_input_sample",
  "class_embed_type",
  "down_block_types",
  "downsample_padding",
  "downsample_type",
  "dropout",
  "flip_sin_to_cos",
  "freq_shift",
  "in_channels",
  "layers_per_block",
  "mid_block_scale_factor",
  "mid_block_type",
  "norm_eps",
  "norm_num_groups",
  "num_class_embeds",
  "num_train_timesteps",
  "out_channels",
  "resnet_time_scale_shift",
  "sample_size",
  "time_embedding_dim",
  "time_embedding_type",
  "up_block_types",
  "upsample_type",
];

function exportCheck() {
  const t = readSafetensors(join(dir, "export_check.safetensors")).tensors;
  const tensor = (k: string) => new Tensor(t.get(k)!.data, t.get(k)!.shape);
  return {
    sample: tensor("sample"),
    timesteps: [...t.get("timestep")!.data],
    expected: tensor("expected"),
    expectedT999: tensor("expected_t999"),
  };
}

function maxAbsDiff(a: Tensor, b: Tensor): number {
  expect(a.shape).toEqual(b.shape);
  let m = 0;
  for (let i = 0; i < a.data.length; i++) m = Math.max(m, Math.abs(a.data[i] - b.data[i]));
  return m;
}

describe("builtin learned models", () => {
  test("listBuiltinModels lists ddpm-shapes32 as a learned model after the exact ones", () => {
    const list = listBuiltinModels();
    const learned = list.filter((m) => m.kind === "learned");
    expect(learned.map((m) => m.name)).toEqual([NAME]);
    expect(list.findIndex((m) => m.kind === "learned")).toBeGreaterThan(list.findLastIndex((m) => m.kind === "exact"));
  });

  test("the checkpoint folder is a diffusers UNet2DModel folder with every config key and a DDPMScheduler config", () => {
    const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
    expect(Object.keys(config).sort()).toEqual([...UNET2D_KEYS].sort());
    expect(config._class_name).toBe("UNet2DModel");
    // diffusers writes the keys sorted (json.dumps(sort_keys=True)).
    expect(Object.keys(config)).toEqual(Object.keys(config).sort());
    const scheduler = JSON.parse(readFileSync(join(dir, "scheduler_config.json"), "utf8"));
    expect(scheduler).toMatchObject({
      _class_name: "DDPMScheduler",
      num_train_timesteps: 1000,
      beta_schedule: "linear",
      beta_start: 0.0001,
      beta_end: 0.02,
      prediction_type: "epsilon",
      variance_type: "fixed_small",
    });
    const card = readFileSync(join(dir, "README.md"), "utf8");
    for (const fact of ["Command:", "steps x batch", "wall time", "Loss curve"]) expect(card).toContain(fact);
  });

  test("the safetensors weights are exactly the parameters the config implies (strict load)", () => {
    const config = parseUNetConfig(JSON.parse(readFileSync(join(dir, "config.json"), "utf8")));
    const tensors = readSafetensors(join(dir, "diffusion_pytorch_model.safetensors")).tensors;
    const weights = weightsFromTensors(tensors, NAME);
    compileUNet(config, weights);
    expect(weights.unused()).toEqual([]);
    let count = 0;
    for (const t of tensors.values()) count += t.data.length;
    expect(count).toBe(687347);
  });

  test("builtin:ddpm-shapes32 predicts PyTorch's recorded outputs within 1e-4", async () => {
    const { sample, timesteps, expected, expectedT999 } = exportCheck();
    // The recorded input is torch.randn(2, 3, 32, 32) with torch.Generator().manual_seed(0).
    expect(maxAbsDiff(new TorchGenerator(0).randn([2, 3, 32, 32]), sample)).toBeLessThan(1e-5);
    const unet = await loadUNet(`builtin:${NAME}`, { cacheDir });
    expect(maxAbsDiff(await unet.predict(sample, timesteps), expected)).toBeLessThan(1e-4);
    expect(maxAbsDiff(await unet.predict(sample, 999), expectedT999)).toBeLessThan(1e-4);
    unet.dispose();
  });

  test("the checkpoint loads through its folder path like a downloaded one, with the same outputs", async () => {
    const { sample, timesteps, expected } = exportCheck();
    const { unet, scheduler } = await fromPretrained(dir, { cacheDir });
    expect(scheduler).toBeInstanceOf(DDPMScheduler);
    expect(unet.sampleSize).toBe(32);
    expect(maxAbsDiff(await unet.predict(sample, timesteps), expected)).toBeLessThan(1e-4);
    unet.dispose();
    const viaBuiltin = await fromPretrained(`builtin:${NAME}`, { cacheDir });
    expect(viaBuiltin.scheduler).toBeInstanceOf(DDPMScheduler);
    viaBuiltin.unet.dispose();
  });

  test("builtinMixture of the learned model is the exact law it was trained on", () => {
    expect(builtinMixture(`builtin:${NAME}`)).toBe(builtinMixture("shapes32"));
  }, 60_000);

  test("builtinModel refuses a learned model with a message that says how to load it", async () => {
    await expect(builtinModel(NAME)).rejects.toThrow(
      'builtin:ddpm-shapes32 is a trained checkpoint, not an exact model: load it with loadUNet or fromPretrained("builtin:ddpm-shapes32")',
    );
  });
});

describe("builtinTrainingLog", () => {
  test("the shipped training log starts at step 1 or later, is ordered, and its loss falls", () => {
    const log = builtinTrainingLog(NAME);
    expect(log.length).toBeGreaterThan(1);
    expect(log.every((r, i) => i === 0 || r.step > log[i - 1].step)).toBe(true);
    expect(log.every((r) => Number.isFinite(r.loss) && r.loss > 0)).toBe(true);
    expect(log[log.length - 1].loss).toBeLessThan(log[0].loss);
  });

  test("an exact model has no training log", () => {
    expect(() => builtinTrainingLog("shapes32")).toThrow("builtin:shapes32 is an exact model: it has no training log");
  });
});

describe("inversion through the learned model", () => {
  test("EDICT and BDIA give rendered data images back within 1e-4 where plain DDIM does not", async () => {
    const { unet, scheduler } = await fromPretrained(`builtin:${NAME}`, { cacheDir });
    const pipe = new DDIMPipeline({ unet, scheduler });
    const images = drawShapes(2, { seed: 8 }).images;
    const mse: Record<string, number> = {};
    for (const method of ["ddim", "edict", "bdia"] as const) {
      mse[method] = (await reconstruct(pipe, images, { method, numInferenceSteps: 10 })).mse;
    }
    expect(mse.edict).toBeLessThan(1e-4);
    expect(mse.bdia).toBeLessThan(1e-4);
    expect(mse.ddim).toBeGreaterThan(1e-3);
    unet.dispose();
  }, 120_000);
});

describe("builtinCheckpointFolder", () => {
  test("on disk it is the package's own folder; over http it fetches the three files once into the cache", async () => {
    expect(await builtinCheckpointFolder(NAME)).toBe(dir);
    expect(await builtinCheckpointFolder("shapes32")).toBeUndefined();
    // A stand-in for JSR: the package's files served over http on loopback.
    let requests = 0;
    const server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch(request) {
        requests++;
        const path = new URL(request.url).pathname;
        const prefix = "/pkg/lib/pretrained/ddpm-shapes32/";
        if (!path.startsWith(prefix)) return new Response("not found", { status: 404 });
        return new Response(readFileSync(join(dir, path.slice(prefix.length))));
      },
    });
    try {
      const cache = mkdtempSync(join(tmpdir(), "ddimlab-fetch-"));
      const baseUrl = `http://127.0.0.1:${server.port}/pkg/lib/models/builtin_models.ts`;
      const fetched = (await builtinCheckpointFolder(NAME, { baseUrl, cacheDir: cache }))!;
      expect(fetched).toBe(join(cache, NAME));
      for (const file of ["config.json", "diffusion_pytorch_model.safetensors", "scheduler_config.json"]) {
        expect(readFileSync(join(fetched, file)).equals(readFileSync(join(dir, file)))).toBe(true);
      }
      expect(requests).toBe(3);
      await builtinCheckpointFolder(NAME, { baseUrl, cacheDir: cache });
      expect(requests).toBe(3); // cached: no second fetch
      const missing = `http://127.0.0.1:${server.port}/elsewhere/lib/models/builtin_models.ts`;
      await expect(builtinCheckpointFolder(NAME, { baseUrl: missing, cacheDir: mkdtempSync(join(tmpdir(), "x-")) }))
        .rejects.toThrow("Cannot fetch config.json of builtin:ddpm-shapes32 from http://127.0.0.1:");
      rmSync(cache, { recursive: true, force: true });
    } finally {
      server.stop(true);
    }
  });
});
