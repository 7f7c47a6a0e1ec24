import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { bfloat16ToFloat, halfToFloat, parseSafetensors, readSafetensors } from "../lib/safetensors.ts";

const fixture = fileURLToPath(new URL("../../shared/fixtures/unet/tiny-ddpm/", import.meta.url));

/** Build a safetensors file from a header object and a data section. */
function build(header: unknown, data: Uint8Array): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const bytes = new Uint8Array(8 + json.length + data.length);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(json.length), true);
  bytes.set(json, 8);
  bytes.set(data, 8 + json.length);
  return bytes;
}

describe("safetensors reader", () => {
  test("reads the diffusers fixture: shapes from its README, I64 timesteps, F32 values", () => {
    const { tensors } = readSafetensors(`${fixture}diffusion_pytorch_model.safetensors`);
    expect(tensors.size).toBe(208); // 1,002,883 parameters in 208 tensors (README.txt: parameters 1002883)
    let count = 0;
    for (const t of tensors.values()) count += t.data.length;
    expect(count).toBe(1002883);
    expect(tensors.get("conv_in.weight")!.shape).toEqual([32, 3, 3, 3]);
    const io = readSafetensors(`${fixture}io.safetensors`).tensors;
    expect(io.get("timestep")!.dtype).toBe("I64");
    expect([...io.get("timestep")!.data]).toEqual([10, 725]); // README.txt: per-batch timesteps [10, 725]
    expect([...io.get("t_scalar")!.data]).toEqual([999]);
  });

  test("converts F16, BF16 and F64 to float32", () => {
    expect(halfToFloat(0x3c00)).toBe(1); // IEEE 754 binary16: 0x3c00 = 1.0, 0xc000 = -2.0, 0x0001 = 2^-24
    expect(halfToFloat(0xc000)).toBe(-2);
    expect(halfToFloat(0x0001)).toBe(2 ** -24);
    expect(bfloat16ToFloat(0x3f80)).toBe(1); // bfloat16 is the top half of float32 1.0 = 0x3f800000
    const data = new Uint8Array(2 + 2 + 8);
    const view = new DataView(data.buffer);
    view.setUint16(0, 0x3555, true); // binary16 0x3555 = 0.333251953125
    view.setUint16(2, 0xbf80, true); // bfloat16 -1
    view.setFloat64(4, 0.1, true);
    const { tensors } = parseSafetensors(build({
      h: { dtype: "F16", shape: [1], data_offsets: [0, 2] },
      b: { dtype: "BF16", shape: [1], data_offsets: [2, 4] },
      d: { dtype: "F64", shape: [1], data_offsets: [4, 12] },
    }, data));
    expect(tensors.get("h")!.data[0]).toBe(0.333251953125);
    expect(tensors.get("b")!.data[0]).toBe(-1);
    expect(tensors.get("d")!.data[0]).toBe(Math.fround(0.1));
  });

  test("a truncated file names the tensor and the byte counts", () => {
    const bytes = readFileSync(`${fixture}diffusion_pytorch_model.safetensors`);
    expect(() => parseSafetensors(bytes.subarray(0, bytes.length - 4), "cut.safetensors")).toThrow(
      /cut\.safetensors is truncated: tensor conv_out\.bias ends at data byte \d+ but the file holds only \d+ data bytes/,
    );
    expect(() => parseSafetensors(bytes.subarray(0, 5), "tiny")).toThrow(/tiny is truncated: 5 bytes/);
    expect(() => parseSafetensors(bytes.subarray(0, 100), "head")).toThrow(
      /head is truncated or not a safetensors file: its header claims 21144 bytes/,
    );
  });

  test("a corrupt header, an unknown dtype or inconsistent offsets are refused by name", () => {
    const json = new TextEncoder().encode("{not json");
    const bad = new Uint8Array(8 + json.length);
    new DataView(bad.buffer).setBigUint64(0, BigInt(json.length), true);
    bad.set(json, 8);
    expect(() => parseSafetensors(bad, "bad")).toThrow(/bad has a corrupt safetensors header/);
    expect(() =>
      parseSafetensors(build({ x: { dtype: "F8", shape: [1], data_offsets: [0, 1] } }, new Uint8Array(1)), "f8")
    )
      .toThrow(/tensor x has unsupported dtype "F8"/);
    expect(() =>
      parseSafetensors(build({ x: { dtype: "F32", shape: [2], data_offsets: [0, 4] } }, new Uint8Array(8)), "off")
    )
      .toThrow(/tensor x \(F32 \[2\]\) needs 8 bytes but data_offsets \[0, 4\] span 4/);
    expect(() => readSafetensors("/nonexistent.safetensors")).toThrow(
      /Cannot read safetensors file \/nonexistent\.safetensors/,
    );
  });
});
