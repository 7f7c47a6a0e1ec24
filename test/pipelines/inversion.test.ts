import { describe, expect, test } from "bun:test";
import { createCanvas } from "@napi-rs/canvas";
import { BUILTIN_SCHEDULER_CONFIG, builtinMixture } from "../../lib/models/builtin_models.ts";
import { DDIMScheduler } from "../../lib/schedulers/ddim.ts";
import { DDIMInverseScheduler } from "../../lib/schedulers/ddim_inverse.ts";
import { DDIMPipeline } from "../../lib/pipelines/ddim_pipeline.ts";
import { imageToTensor } from "../../lib/io/image.ts";
import { decodeLatents, imageError, invert, latentsFromNoise, reconstruct } from "../../lib/pipelines/inversion.ts";
import { drawShapes } from "../../lib/models/shapes_dataset.ts";
import { modelFromFunction } from "../../lib/core/model.ts";
import { Tensor } from "../../lib/core/tensor.ts";
import { TorchGenerator } from "../../lib/core/torch_generator.ts";
import {
  countingZeroModel,
  fixtureSample,
  maxAbsDiff,
  schedulerFixtures,
  standInModel,
  standInUNet,
} from "../_fixtures.ts";

const STEPS = [10, 20, 50, 100];

async function errorsBySteps(pipe: DDIMPipeline, image: Tensor): Promise<number[]> {
  const errors: number[] = [];
  for (const numInferenceSteps of STEPS) errors.push((await reconstruct(pipe, image, { numInferenceSteps })).mse);
  return errors;
}

// DDIM is a first-order solver of the ODE, eq. (14): its error falls like 1/S, so the MSE like 1/S^2. From 10 to
// 100 steps that is a factor of 100; the checks below ask for strictly falling errors and at least a factor of 10.
function expectFalling(errors: number[]): void {
  for (let k = 1; k < errors.length; k++) expect(errors[k]).toBeLessThan(errors[k - 1]);
  expect(errors[errors.length - 1]).toBeLessThan(errors[0] / 10);
}

describe("invert follows diffusers' DDIM inversion", () => {
  // test/fixtures/diffusers-schedulers.json, loops with scheduler "ddim_inverse": DDIMInverseScheduler(config)
  // run over its ascending timesteps from the fixture's sample, model(x, t) the stand-in, no noise
  for (const loop of schedulerFixtures().loops.filter((l) => l.scheduler === "ddim_inverse")) {
    test(`reproduces the ddim_inverse loop ${JSON.stringify(loop.config)}, ${loop.n} steps, within 1e-4`, async () => {
      const unet = standInUNet();
      const pipe = new DDIMPipeline({ unet, scheduler: DDIMScheduler.fromConfig(loop.config) });
      const clipSample = (loop.config.clip_sample as boolean | undefined) ?? true; // diffusers' default is on
      const { latents, timesteps } = await invert(pipe, fixtureSample(), { numInferenceSteps: loop.n, clipSample });
      const reference = DDIMInverseScheduler.fromConfig(loop.config);
      reference.setTimesteps(loop.n);
      expect(timesteps).toEqual([...reference.timesteps]);
      expect(maxAbsDiff(latents.data, loop.final)).toBeLessThan(1e-4);
    });
  }
});

describe("reconstruction error falls as the number of steps rises", () => {
  test("on images drawn exactly from the embedded shapes32 model's distribution", async () => {
    const pipe = await DDIMPipeline.fromPretrained("builtin:shapes32");
    const images = builtinMixture("shapes32").sample(2, new TorchGenerator(5)).samples.reshape([2, 3, 32, 32]);
    expectFalling(await errorsBySteps(pipe, images));
  }, 60_000);

  test("on images the embedded shapes32 model generated itself (DDIM, eta 0, 100 steps)", async () => {
    const pipe = await DDIMPipeline.fromPretrained("builtin:shapes32");
    const { samples } = await pipe.sample({ seed: 3, batchSize: 2, numInferenceSteps: 100 });
    expectFalling(await errorsBySteps(pipe, samples));
  }, 60_000);

  test("on a picture this test draws itself, with the embedded single-Gaussian model gaussian32", async () => {
    const canvas = createCanvas(32, 32);
    const context = canvas.getContext("2d");
    context.fillStyle = "rgb(40, 60, 120)";
    context.fillRect(0, 0, 32, 32);
    context.fillStyle = "rgb(230, 200, 40)";
    context.beginPath();
    context.arc(14, 17, 8, 0, 2 * Math.PI);
    context.fill();
    const pixels = context.getImageData(0, 0, 32, 32);
    const image = imageToTensor({ width: 32, height: 32, data: new Uint8ClampedArray(pixels.data) });
    const pipe = await DDIMPipeline.fromPretrained("builtin:gaussian32");
    expectFalling(await errorsBySteps(pipe, image));
  }, 60_000);

  test("reconstruct reports latents, the decode, per-image errors and PSNR = 10 log10(1 / MSE)", async () => {
    const pipe = await DDIMPipeline.fromPretrained("builtin:gaussian32");
    const image = new TorchGenerator(2).randn([2, 3, 32, 32]);
    for (let k = 0; k < image.size; k++) image.data[k] = Math.tanh(image.data[k]);
    const result = await reconstruct(pipe, image, { numInferenceSteps: 10, trajectory: true });
    expect(result.latents.shape).toEqual([2, 3, 32, 32]);
    expect(result.reconstruction.shape).toEqual([2, 3, 32, 32]);
    expect(result.trajectory!.length).toBe(10);
    expect(result.msePerImage.length).toBe(2);
    expect(result.mse).toBeCloseTo((result.msePerImage[0] + result.msePerImage[1]) / 2, 12);
    expect(result.psnr).toBeCloseTo(10 * Math.log10(1 / result.mse), 10);
  });
});

describe("reconstruct decodes without clipping, as the inversion it undoes", () => {
  test("its reconstruction is the eta = 0 decode of its latents with clipSample false, which clipping would change", async () => {
    // the fixture's stand-in model pushes predX0 far outside [-1, 1] at large t, so clipping matters here
    const unet = standInUNet();
    const pipe = new DDIMPipeline({ unet, scheduler: DDIMScheduler.fromConfig({ clip_sample: true }) });
    const image = new Tensor(Float32Array.from({ length: 48 }, (_, k) => 0.8 * Math.sin(0.9 * k)), [1, 3, 4, 4]);
    const result = await reconstruct(pipe, image, { numInferenceSteps: 10 });
    const decode = async (clipSample: boolean) =>
      (await pipe.sample({ xT: result.latents, numInferenceSteps: 10, eta: 0, clipSample })).samples;
    expect(Array.from(result.reconstruction.data)).toEqual(Array.from((await decode(false)).data));
    const clipped = await decode(true);
    let gap = 0;
    for (let k = 0; k < clipped.size; k++) {
      gap = Math.max(gap, Math.abs(clipped.data[k] - result.reconstruction.data[k]));
    }
    expect(gap).toBeGreaterThan(1e-3);
  });
});

describe("imageError", () => {
  test("MSE on [0, 1]: black against white is 1 on the [0, 1] scale; 0.1 off everywhere is PSNR 20 dB", () => {
    expect(imageError(Tensor.from([-1, -1], [1, 2]), Tensor.from([1, 1], [1, 2])).mse).toBe(1);
    const offset = imageError(Tensor.from([0, 0.5], [1, 2]), Tensor.from([0.2, 0.7], [1, 2]));
    expect(offset.mse).toBeCloseTo(0.01, 8); // 0.2 and 0.7 are float32 values
    expect(offset.psnr).toBeCloseTo(20, 5);
    expect(imageError(Tensor.zeros([1, 4]), Tensor.zeros([1, 4])).psnr).toBe(Infinity);
    expect(() => imageError(Tensor.zeros([1, 4]), Tensor.zeros([1, 5]))).toThrow(/\[1, 4\] and \[1, 5\]/);
  });
});

describe("bad input is refused before the model runs", () => {
  test("an image of a size the model cannot take, and steps out of range, name the problem", async () => {
    const { unet, calls } = countingZeroModel(8);
    const pipe = new DDIMPipeline({ unet });
    await expect(invert(pipe, Tensor.zeros([1, 3, 16, 16]))).rejects.toThrow(
      /image has shape \[1, 3, 16, 16\] but the model takes \[1, 3, 8, 8\]/,
    );
    await expect(reconstruct(pipe, Tensor.zeros([1, 1, 8, 8]))).rejects.toThrow(/\[1, 1, 8, 8\]/);
    await expect(invert(pipe, Tensor.zeros([1, 3, 8, 8]), { numInferenceSteps: 0 })).rejects.toThrow(/got 0/);
    await expect(invert(pipe, Tensor.zeros([1, 3, 8, 8]), { numInferenceSteps: 1001 })).rejects.toThrow(/got 1001/);
    expect(calls()).toBe(0);
  });
});

describe("exact inversion: EDICT and BDIA-DDIM give the image back where DDIM does not", () => {
  // the images the issue names: rendered by the shapes data set, off the mixture's components, where DDIM's round
  // trip lands on another shape
  const images = drawShapes(6, { seed: 8 }).images;

  for (const S of [10, 50]) {
    test(
      `on rendered data images through builtin:shapes32 at S = ${S}: EDICT and BDIA within 1e-4 MSE, DDIM above 1e-2`,
      async () => {
        const pipe = await DDIMPipeline.fromPretrained("builtin:shapes32");
        const ddim = await reconstruct(pipe, images, { numInferenceSteps: S });
        const edict = await reconstruct(pipe, images, { method: "edict", numInferenceSteps: S });
        const bdia = await reconstruct(pipe, images, { method: "bdia", numInferenceSteps: S });
        expect(ddim.mse).toBeGreaterThan(1e-2);
        expect(edict.mse).toBeLessThan(1e-4);
        expect(bdia.mse).toBeLessThan(1e-4);
        expect([edict.method, edict.p, bdia.method, bdia.gamma]).toEqual(["edict", 0.93, "bdia", 1]);
      },
      60_000,
    );
  }

  test("with a float64 state the round trip through builtin:shapes32 keeps the image to 1e-9 (S = 20)", async () => {
    const pipe = await DDIMPipeline.fromPretrained("builtin:shapes32");
    for (const method of ["edict", "bdia"] as const) {
      const result = await reconstruct(pipe, images, { method, numInferenceSteps: 20, precision: "float64" });
      expect(result.reconstructionState).toBeInstanceOf(Float64Array);
      expect(maxAbsDiff(result.reconstructionState, images.data)).toBeLessThan(1e-9);
    }
  }, 60_000);

  test("through a stand-in model at S = 10 and 50: EDICT and BDIA within 1e-4 MSE, DDIM above 1e-3", async () => {
    const unet = standInUNet(32);
    const pipe = new DDIMPipeline({ unet, scheduler: DDIMScheduler.fromConfig(BUILTIN_SCHEDULER_CONFIG) });
    const pair = drawShapes(2, { seed: 8 }).images;
    for (const S of [10, 50]) {
      expect((await reconstruct(pipe, pair, { numInferenceSteps: S })).mse).toBeGreaterThan(1e-3);
      expect((await reconstruct(pipe, pair, { method: "edict", numInferenceSteps: S })).mse).toBeLessThan(1e-4);
      expect((await reconstruct(pipe, pair, { method: "bdia", numInferenceSteps: S })).mse).toBeLessThan(1e-4);
    }
  });

  test("model calls: DDIM S + S, EDICT 2S + 2S, BDIA S + (S - 1); reconstruct of an inversion decodes it alone", async () => {
    let calls = 0;
    const unet = modelFromFunction((x, t) => {
      calls++;
      return standInModel(x, t as number);
    }, { sampleSize: 4, inChannels: 3 });
    const pipe = new DDIMPipeline({ unet, scheduler: DDIMScheduler.fromConfig(BUILTIN_SCHEDULER_CONFIG) });
    const image = fixtureSample([1, 3, 4, 4]);
    for (const [method, inverse, decode] of [["ddim", 10, 10], ["edict", 20, 20], ["bdia", 10, 9]] as const) {
      calls = 0;
      const result = await reconstruct(pipe, image, { method, numInferenceSteps: 10 });
      expect([result.modelCalls, result.decodeModelCalls, calls]).toEqual([inverse, decode, inverse + decode]);
      calls = 0;
      const again = await reconstruct(pipe, result);
      expect(calls).toBe(decode);
      expect(again.reconstruction.data).toEqual(result.reconstruction.data);
    }
  });

  test("latentsFromNoise and decodeLatents sample from noise with each method", async () => {
    const unet = standInUNet();
    const pipe = new DDIMPipeline({ unet, scheduler: DDIMScheduler.fromConfig(BUILTIN_SCHEDULER_CONFIG) });
    const xT = new TorchGenerator(0).randn([2, 3, 4, 4]);
    const ddim = await pipe.sample({ xT, numInferenceSteps: 10, clipSample: false });
    const viaDecode = await decodeLatents(pipe, latentsFromNoise(xT, { numInferenceSteps: 10 }));
    expect(viaDecode.samples.data).toEqual(ddim.samples.data);
    // BDIA with gamma = 0 is DDIM (up to DDIM's float32 coefficients)
    const bdia0 = await decodeLatents(pipe, latentsFromNoise(xT, { method: "bdia", gamma: 0, numInferenceSteps: 10 }));
    expect(maxAbsDiff(bdia0.samples.data, ddim.samples.data)).toBeLessThan(1e-4);
    const edict = await decodeLatents(pipe, latentsFromNoise(xT, { method: "edict", numInferenceSteps: 10 }));
    expect([edict.state.length, edict.modelCalls]).toEqual([2, 20]);
  });
});

describe("an inversion decodes only with the method that made it", () => {
  test("another method, p, gamma or step count is refused with the values named", async () => {
    const unet = standInUNet();
    const pipe = new DDIMPipeline({ unet, scheduler: DDIMScheduler.fromConfig(BUILTIN_SCHEDULER_CONFIG) });
    const image = fixtureSample([1, 3, 4, 4]);
    const edict = await invert(pipe, image, { method: "edict", numInferenceSteps: 10 });
    const bdia = await invert(pipe, image, { method: "bdia", gamma: 0.9, numInferenceSteps: 10 });
    await expect(reconstruct(pipe, edict, { method: "bdia" })).rejects.toThrow(
      `These latents were made with method "edict" and decode only with it, got method "bdia"`,
    );
    await expect(reconstruct(pipe, bdia, { method: "ddim" })).rejects.toThrow(`made with method "bdia"`);
    await expect(decodeLatents(pipe, edict, { p: 0.9 })).rejects.toThrow(
      "These latents were made by EDICT with p = 0.93 and decode exactly only with it, got p = 0.9",
    );
    await expect(decodeLatents(pipe, bdia, { gamma: 1 })).rejects.toThrow("with gamma = 0.9 and decode exactly only");
    await expect(decodeLatents(pipe, edict, { numInferenceSteps: 20 })).rejects.toThrow(
      "made with 10 steps and decode on that schedule, got numInferenceSteps 20",
    );
    await expect(decodeLatents(pipe, { ...edict, state: [edict.state[0]] })).rejects.toThrow(
      "EDICT latents hold 2 arrays, got 1",
    );
  });
});

describe("bad method parameters are refused before the model runs", () => {
  test("p outside (0, 1), gamma outside [0, 1], gamma = 0 to invert, a parameter of another method, clipping", async () => {
    const { unet, calls } = countingZeroModel(8);
    const pipe = new DDIMPipeline({ unet });
    const image = Tensor.zeros([1, 3, 8, 8]);
    for (const p of [0, 1, 1.2]) {
      await expect(invert(pipe, image, { method: "edict", p })).rejects.toThrow(
        `EDICT's mixing weight p must be in (0, 1) (the paper uses 0.93), got ${p}`,
      );
    }
    for (const gamma of [-0.5, 2]) {
      await expect(reconstruct(pipe, image, { method: "bdia", gamma })).rejects.toThrow(
        `BDIA's gamma must be in [0, 1] (0 is DDIM), got ${gamma}`,
      );
    }
    await expect(invert(pipe, image, { method: "bdia", gamma: 0 })).rejects.toThrow(
      "BDIA with gamma = 0 is DDIM: its step does not depend on z_{i+1}",
    );
    await expect(invert(pipe, image, { p: 0.9 })).rejects.toThrow(
      `p is EDICT's mixing weight and applies to method "edict" only`,
    );
    await expect(invert(pipe, image, { method: "edict", gamma: 1 })).rejects.toThrow(`gamma is BDIA's parameter`);
    await expect(invert(pipe, image, { method: "edict", clipSample: true })).rejects.toThrow(
      "edict runs without clipping",
    );
    await expect(invert(pipe, image, { precision: "float64" })).rejects.toThrow(
      `precision "float64" applies to the exact methods`,
    );
    // deno-lint-ignore no-explicit-any
    await expect(invert(pipe, image, { method: "ddpm" as any })).rejects.toThrow(
      `method must be "ddim", "edict" or "bdia", got "ddpm"`,
    );
    expect(calls()).toBe(0);
  });
});
