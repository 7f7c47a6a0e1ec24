import { describe, expect, test } from "bun:test";
import { Buffer } from "node:buffer";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import {
  bfloat16ToFloat,
  halfToFloat,
  parseSafetensors,
  readSafetensors,
  serializeSafetensors,
} from "../../lib/models/safetensors.ts";

const fixture = fileURLToPath(new URL("../fixtures/unet/tiny-ddpm/", import.meta.url));

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

  test("an F32 tensor at an unaligned file offset reads its own bytes (the header may have any length)", () => {
    // Header lengths 1 to 3 bytes past a multiple of 4 put the data at offsets 4k + 1, 4k + 2, 4k + 3 of the file.
    for (const pad of [0, 1, 2, 3]) {
      const values = new Float32Array([1.5, -2.25, 3.125]);
      const header = { __metadata__: { pad: "x".repeat(pad) }, w: { dtype: "F32", shape: [3], data_offsets: [0, 12] } };
      const bytes = build(header, new Uint8Array(values.buffer));
      // Also as a Node Buffer (what readFileSync returns, whose `slice` does not copy), and inside a larger buffer
      // at an odd offset, as Node's pooled Buffers are.
      const pool = new Uint8Array(bytes.length + 7);
      pool.set(bytes, 7);
      for (const file of [bytes, Buffer.from(bytes), pool.subarray(7), Buffer.from(pool.buffer, 7, bytes.length)]) {
        expect([...parseSafetensors(file).tensors.get("w")!.data]).toEqual([1.5, -2.25, 3.125]);
      }
    }
  });

  test("a byte span larger or smaller than dtype x shape is refused", () => {
    // F32 [2] needs exactly 2 x 4 = 8 bytes (safetensors format: end - begin = numel * dtype size).
    expect(() =>
      parseSafetensors(build({ x: { dtype: "F32", shape: [2], data_offsets: [0, 12] } }, new Uint8Array(12)), "big")
    )
      .toThrow(/tensor x \(F32 \[2\]\) needs 8 bytes but data_offsets \[0, 12\] span 12/);
  });

  test("overlapping tensors, a gap and bytes after the last tensor are refused, as the safetensors crate does", () => {
    const data = new Uint8Array(16);
    expect(() =>
      parseSafetensors(
        build({
          a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
          b: { dtype: "F32", shape: [2], data_offsets: [4, 12] },
        }, data.subarray(0, 12)),
        "overlap",
      )
    ).toThrow("overlap: tensor b (data_offsets [4, 12]) overlaps tensor a, which ends at data byte 8");
    expect(() =>
      parseSafetensors(
        build({
          a: { dtype: "F32", shape: [1], data_offsets: [0, 4] },
          b: { dtype: "F32", shape: [1], data_offsets: [8, 12] },
        }, data.subarray(0, 12)),
        "gap",
      )
    ).toThrow("gap: data bytes 4 to 8 belong to no tensor (a gap before tensor b)");
    expect(() => parseSafetensors(build({ a: { dtype: "F32", shape: [1], data_offsets: [0, 4] } }, data), "tail"))
      .toThrow("tail: the tensors cover 4 data bytes but the file holds 16; the rest belongs to no tensor");
  });
});

describe("safetensors writer", () => {
  test("writes the layout of the format's specification, byte for byte", () => {
    const bytes = serializeSafetensors({ a: { shape: [2], data: new Float32Array([1, -2]) } }, { k: "v" });
    // the header JSON (79 bytes) padded with 1 space to 80, a multiple of 8; then 1.0f = 0x3f800000 and
    // -2.0f = 0xc0000000 in little-endian order (IEEE 754 binary32)
    const json = '{"__metadata__":{"k":"v"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';
    const header = json + " ".repeat((8 - (json.length % 8)) % 8);
    expect(header.length % 8).toBe(0);
    const expected = new Uint8Array(8 + header.length + 8);
    new DataView(expected.buffer).setBigUint64(0, BigInt(header.length), true);
    expected.set(new TextEncoder().encode(header), 8);
    expected.set([0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0], 8 + header.length);
    expect([...bytes]).toEqual([...expected]);
  });

  test("what the writer writes, the reader reads back", () => {
    const data = Float32Array.from({ length: 12 }, (_, i) => Math.fround(Math.sin(i)));
    const bytes = serializeSafetensors({
      w: { shape: [3, 4], data },
      b: { shape: [3], data: new Float32Array([7, 8, 9]) },
    });
    const { tensors, metadata } = parseSafetensors(bytes);
    expect([...tensors.keys()]).toEqual(["w", "b"]);
    expect(tensors.get("w")!.shape).toEqual([3, 4]);
    expect([...tensors.get("w")!.data]).toEqual([...data]);
    expect([...tensors.get("b")!.data]).toEqual([7, 8, 9]);
    expect(metadata).toEqual({});
  });

  test("a shape that does not match the data is refused by name", () => {
    expect(() => serializeSafetensors({ w: { shape: [2, 2], data: new Float32Array(3) } })).toThrow(
      "Tensor w has shape [2, 2] but 3 values",
    );
  });
});
