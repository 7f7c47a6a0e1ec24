import { describe, expect, test } from "bun:test";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fromPretrained, loadUNet } from "../../lib/models/load.ts";
import { expectFixtureCases, fixtures } from "./_unet_fixtures.ts";

describe("loadUNet compiles a UNet2DModel checkpoint that matches diffusers within 1e-4", () => {
  for (const name of ["tiny-ddpm", "tiny-fourier"]) {
    test(`${name}: compiled from config.json + safetensors`, async () => {
      const unet = await loadUNet(join(fixtures, name), { cacheDir: false });
      expect(unet.inChannels).toBe(3);
      expect(unet.outChannels).toBe(3);
      expect(unet.sampleSize).toBe(name === "tiny-ddpm" ? 16 : 8);
      expect(unet.config._class_name).toBe("UNet2DModel");
      await expectFixtureCases(unet, name);
      unet.dispose();
    });
  }

  test("tiny-ddpm: the .bin checkpoint with 2022 attention names (query/key/value/proj_attn)", async () => {
    const unet = await loadUNet(join(fixtures, "tiny-ddpm", "diffusion_pytorch_model.bin"), { cacheDir: false });
    await expectFixtureCases(unet, "tiny-ddpm");
    unet.dispose();
  });
});

describe("the loader refuses bad input with a clear error", () => {
  test("a missing path, a folder without weights, a truncated weight file", async () => {
    await expect(loadUNet("/nonexistent/unet")).rejects.toThrow(/No UNet at \/nonexistent\/unet/);
    const dir = mkdtempSync(join(tmpdir(), "ddimlab-bad-"));
    copyFileSync(join(fixtures, "tiny-ddpm", "config.json"), join(dir, "config.json"));
    await expect(loadUNet(dir, { cacheDir: false })).rejects.toThrow(/No UNet in/);
    const bytes = readFileSync(join(fixtures, "tiny-ddpm", "diffusion_pytorch_model.safetensors"));
    writeFileSync(join(dir, "diffusion_pytorch_model.safetensors"), bytes.subarray(0, bytes.length - 1000));
    await expect(loadUNet(dir, { cacheDir: false })).rejects.toThrow(/is truncated: tensor conv_out\.\w+ ends at/);
  });

  test("an unsupported config value names the key and the value", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ddimlab-cfg-"));
    const config = JSON.parse(readFileSync(join(fixtures, "tiny-ddpm", "config.json"), "utf8"));
    writeFileSync(join(dir, "config.json"), JSON.stringify({ ...config, resnet_time_scale_shift: "scale_shift" }));
    copyFileSync(
      join(fixtures, "tiny-ddpm", "diffusion_pytorch_model.safetensors"),
      join(dir, "diffusion_pytorch_model.safetensors"),
    );
    await expect(loadUNet(dir, { cacheDir: false })).rejects.toThrow(/resnet_time_scale_shift = "scale_shift"/);
  });

  test("fromPretrained refuses a scheduler class it does not know, naming it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ddimlab-pre-"));
    copyFileSync(join(fixtures, "tiny-fourier", "config.json"), join(dir, "config.json"));
    copyFileSync(
      join(fixtures, "tiny-fourier", "diffusion_pytorch_model.safetensors"),
      join(dir, "diffusion_pytorch_model.safetensors"),
    );
    writeFileSync(join(dir, "scheduler_config.json"), JSON.stringify({ _class_name: "ScoreSdeVeScheduler" }));
    await expect(fromPretrained(dir, { cacheDir: false })).rejects.toThrow(
      /unsupported scheduler _class_name "ScoreSdeVeScheduler"/,
    );
    await expect(fromPretrained(join(fixtures, "tiny-ddpm"))).rejects.toThrow(/No scheduler config/);
  });
});

describe("fromPretrained", () => {
  test("the google/ddpm-* layout and a pipeline folder build the scheduler class scheduler_config.json names", async () => {
    const flat = mkdtempSync(join(tmpdir(), "ddimlab-flat-"));
    for (const f of ["config.json", "diffusion_pytorch_model.safetensors"]) {
      copyFileSync(join(fixtures, "tiny-ddpm", f), join(flat, f));
    }
    writeFileSync(
      join(flat, "scheduler_config.json"),
      JSON.stringify({ _class_name: "DDIMScheduler", num_train_timesteps: 1000 }),
    );
    const a = await fromPretrained(flat, { cacheDir: false });
    expect(a.scheduler.constructor.name).toBe("DDIMScheduler");
    await expectFixtureCases(a.unet, "tiny-ddpm");
    a.unet.dispose();

    const pipeline = mkdtempSync(join(tmpdir(), "ddimlab-pipe-"));
    mkdirSync(join(pipeline, "unet"));
    mkdirSync(join(pipeline, "scheduler"));
    for (const f of ["config.json", "diffusion_pytorch_model.bin"]) {
      copyFileSync(join(fixtures, "tiny-ddpm", f), join(pipeline, "unet", f));
    }
    writeFileSync(
      join(pipeline, "model_index.json"),
      JSON.stringify({ _class_name: "DDPMPipeline", unet: ["diffusers", "UNet2DModel"] }),
    );
    writeFileSync(
      join(pipeline, "scheduler", "scheduler_config.json"),
      JSON.stringify({ _class_name: "DDPMScheduler", variance_type: "fixed_large" }),
    );
    const b = await fromPretrained(pipeline, { cacheDir: false });
    expect(b.scheduler.constructor.name).toBe("DDPMScheduler");
    await expectFixtureCases(b.unet, "tiny-ddpm");
    b.unet.dispose();
  });
});
