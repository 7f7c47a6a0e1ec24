/**
 * The tiny UNet2DModel fixtures (test/fixtures/unet/, see each fixture's README.txt) and the check that a model
 * reproduces diffusers' outputs on them, shared by the adapter, compiler and loader tests.
 *
 * Reference outputs: diffusers' own UNet2DModel (commit 58eb52c, PyTorch 1.13, float32).
 *
 * @module
 */
import { expect } from "bun:test";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { OnnxUNet } from "../../lib/models/onnx_unet.ts";
import { readSafetensors } from "../../lib/models/safetensors.ts";
import { Tensor } from "../../lib/core/tensor.ts";

/** The folder of the UNet fixtures. */
export const fixtures = fileURLToPath(new URL("../fixtures/unet/", import.meta.url));
/** How far from diffusers' float32 output a prediction may be. */
export const tolerance = 1e-4;

/** The largest elementwise |a - b|; the lengths must agree. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** A fixture's inputs and diffusers' outputs. */
export function io(name: string) {
  const t = readSafetensors(join(fixtures, name, "io.safetensors")).tensors;
  const tensor = (k: string) => new Tensor(t.get(k)!.data, t.get(k)!.shape);
  return {
    sample: tensor("sample"),
    timesteps: [...t.get("timestep")!.data],
    expected: tensor("expected"),
    tScalar: t.get("t_scalar")!.data[0],
    expectedScalar: tensor("expected_t_scalar"),
    sampleRect: tensor("sample_rect"),
    expectedRect: tensor("expected_rect"),
  };
}

/** Every case of a fixture: per-batch timesteps, one scalar timestep, a non-square input. */
export async function expectFixtureCases(unet: OnnxUNet, name: string) {
  const c = io(name);
  const out = await unet.predict(c.sample, c.timesteps);
  expect(out.shape).toEqual(c.expected.shape);
  expect(maxAbsDiff(out.data, c.expected.data)).toBeLessThan(tolerance);
  const scalar = await unet.predict(c.sample, c.tScalar);
  expect(maxAbsDiff(scalar.data, c.expectedScalar.data)).toBeLessThan(tolerance);
  const rect = await unet.predict(c.sampleRect, c.timesteps);
  expect(rect.shape).toEqual(c.expectedRect.shape);
  expect(maxAbsDiff(rect.data, c.expectedRect.data)).toBeLessThan(tolerance);
}
