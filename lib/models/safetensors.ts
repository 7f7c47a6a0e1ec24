/**
 * A reader (and a small float32 writer) for the safetensors format: an 8-byte little-endian header length n, n bytes
 * of JSON (`{name: {dtype, shape, data_offsets: [begin, end]}}`, plus an optional `__metadata__`), then the raw
 * tensors.
 *
 * Every tensor is returned as float32 (F16, BF16, F64 and the integer types are converted; F32 is a zero-copy
 * view when aligned). A truncated or corrupt file gets an error that names the file, the tensor and the byte counts.
 *
 * @module
 */
import { readFileSync } from "node:fs";

/** One tensor read from a safetensors file. */
export interface SafetensorsTensor {
  /** The stored element type (`"F32"`, `"F16"`, `"BF16"`, `"F64"`, `"I64"`, ...). */
  dtype: string;
  /** The dimensions. */
  shape: number[];
  /** The values as float32, row-major. */
  data: Float32Array;
}

/** The contents of a safetensors file. */
export interface SafetensorsFile {
  /** Tensors in file order. */
  tensors: Map<string, SafetensorsTensor>;
  /** The optional `__metadata__` string map. */
  metadata: Record<string, string>;
}

const itemSize: Record<string, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
  U16: 2,
  U32: 4,
  U64: 8,
};

/**
 * Read a safetensors file from disk.
 *
 * bytes = u64le(n) ++ header_json[n] ++ tensor data
 *
 * @param path the `.safetensors` file
 * @returns its tensors (as float32) and metadata
 * @throws Error naming the file when it is missing, truncated or corrupt
 * @example
 * ```ts
 * import { readSafetensors } from "../../mod.ts";
 * const { tensors } = readSafetensors("test/fixtures/unet/tiny-ddpm/diffusion_pytorch_model.safetensors");
 * // conv_in maps 3 channels to block_out_channels[0] = 32 (the fixture's config.json) with a 3x3 kernel
 * if (tensors.get("conv_in.weight")?.shape.join() !== "32,3,3,3") throw new Error("wrong conv_in.weight");
 * ```
 */
export function readSafetensors(path: string): SafetensorsFile {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new Error(`Cannot read safetensors file ${path}: ${error instanceof Error ? error.message : error}`);
  }
  return parseSafetensors(bytes, path);
}

/**
 * Parse the bytes of a safetensors file.
 *
 * @param bytes the whole file
 * @param source a name for error messages (the path)
 * @returns its tensors (as float32) and metadata
 * @throws Error when the header or a tensor's byte range does not fit the data
 * @example
 * ```ts
 * import { parseSafetensors } from "../../mod.ts";
 * const header = new TextEncoder().encode('{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}');
 * const bytes = new Uint8Array(8 + header.length + 4);
 * new DataView(bytes.buffer).setBigUint64(0, BigInt(header.length), true);
 * bytes.set(header, 8);
 * const x = parseSafetensors(bytes).tensors.get("x");
 * if (x?.shape.join() !== "1" || x.data[0] !== 0) throw new Error("expected one float32 zero");
 * ```
 */
export function parseSafetensors(bytes: Uint8Array, source = "safetensors data"): SafetensorsFile {
  if (bytes.length < 8) {
    throw new Error(
      `${source} is truncated: ${bytes.length} bytes, too short for the 8-byte safetensors header length`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getBigUint64(0, true);
  if (headerLength > BigInt(bytes.length - 8)) {
    throw new Error(
      `${source} is truncated or not a safetensors file: its header claims ${headerLength} bytes but only ${
        bytes.length - 8
      } follow`,
    );
  }
  const n = Number(headerLength);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (error) {
    throw new Error(`${source} has a corrupt safetensors header (${error instanceof Error ? error.message : error})`);
  }
  if (header === null || typeof header !== "object" || Array.isArray(header)) {
    throw new Error(`${source} has a safetensors header that is not a JSON object`);
  }
  const dataStart = 8 + n;
  const dataLength = bytes.length - dataStart;
  const entries: { name: string; dtype: string; shape: number[]; begin: number; end: number; count: number }[] = [];
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === "__metadata__") {
      metadata = (entry ?? {}) as Record<string, string>;
      continue;
    }
    const { dtype, shape, data_offsets: offsets } = (entry ?? {}) as {
      dtype?: unknown;
      shape?: unknown;
      data_offsets?: unknown;
    };
    if (typeof dtype !== "string" || !(dtype in itemSize)) {
      throw new Error(`${source}: tensor ${name} has unsupported dtype ${JSON.stringify(dtype)}`);
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new Error(`${source}: tensor ${name} has an invalid shape ${JSON.stringify(shape)}`);
    }
    if (
      !Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)
    ) {
      throw new Error(`${source}: tensor ${name} has invalid data_offsets ${JSON.stringify(offsets)}`);
    }
    const [begin, end] = offsets as [number, number];
    const count = (shape as number[]).reduce((a, b) => a * b, 1);
    const size = itemSize[dtype];
    if (end - begin !== count * size) {
      throw new Error(
        `${source}: tensor ${name} (${dtype} [${shape.join(", ")}]) needs ${
          count * size
        } bytes but data_offsets [${begin}, ${end}] span ${end - begin}`,
      );
    }
    if (end > dataLength) {
      throw new Error(
        `${source} is truncated: tensor ${name} ends at data byte ${end} but the file holds only ${dataLength} data bytes`,
      );
    }
    entries.push({ name, dtype, shape: shape as number[], begin, end, count });
  }
  // As the reference implementation (the safetensors crate's `validate`) requires: sorted by offset, the tensors
  // tile the data section exactly, with no overlap, no gap and nothing after the last one. Overlapping tensors
  // would silently share bytes.
  const byOffset = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  let previous = "the start of the data";
  for (const entry of byOffset) {
    if (entry.begin < covered) {
      throw new Error(
        `${source}: tensor ${entry.name} (data_offsets [${entry.begin}, ${entry.end}]) overlaps ${previous}, which ends at data byte ${covered}`,
      );
    }
    if (entry.begin > covered) {
      throw new Error(
        `${source}: data bytes ${covered} to ${entry.begin} belong to no tensor (a gap before tensor ${entry.name})`,
      );
    }
    covered = entry.end;
    previous = `tensor ${entry.name}`;
  }
  if (covered !== dataLength) {
    throw new Error(
      `${source}: the tensors cover ${covered} data bytes but the file holds ${dataLength}; the rest belongs to no tensor`,
    );
  }
  const tensors = new Map<string, SafetensorsTensor>();
  for (const { name, dtype, shape, begin, end, count } of entries) {
    const raw = bytes.subarray(dataStart + begin, dataStart + end);
    tensors.set(name, { dtype, shape, data: toFloat32(raw, dtype, count) });
  }
  return { tensors, metadata };
}

function toFloat32(raw: Uint8Array, dtype: string, count: number): Float32Array {
  if (dtype === "F32") {
    if (raw.byteOffset % 4 === 0) return new Float32Array(raw.buffer, raw.byteOffset, count);
    // Not aligned (the header may have any length): copy. `new Uint8Array(raw)` copies; `raw.slice()` would not
    // for a Node Buffer, whose `slice` is a view onto the whole file.
    return new Float32Array(new Uint8Array(raw).buffer, 0, count);
  }
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    switch (dtype) {
      case "F64":
        out[i] = view.getFloat64(i * 8, true);
        break;
      case "F16":
        out[i] = halfToFloat(view.getUint16(i * 2, true));
        break;
      case "BF16":
        out[i] = bfloat16ToFloat(view.getUint16(i * 2, true));
        break;
      case "I64":
        out[i] = Number(view.getBigInt64(i * 8, true));
        break;
      case "U64":
        out[i] = Number(view.getBigUint64(i * 8, true));
        break;
      case "I32":
        out[i] = view.getInt32(i * 4, true);
        break;
      case "U32":
        out[i] = view.getUint32(i * 4, true);
        break;
      case "I16":
        out[i] = view.getInt16(i * 2, true);
        break;
      case "U16":
        out[i] = view.getUint16(i * 2, true);
        break;
      case "I8":
        out[i] = view.getInt8(i);
        break;
      default:
        out[i] = view.getUint8(i);
    }
  }
  return out;
}

/**
 * Convert an IEEE half-precision bit pattern to a number.
 *
 * value = (-1)^s 2^(e - 15) (1 + m / 1024), subnormals 2^-14 m / 1024
 *
 * @param bits the 16-bit pattern
 * @returns the value
 * @example
 * ```ts
 * import { halfToFloat } from "../../mod.ts";
 * // IEEE half: 0x3c00 is 1 (exponent 15 = bias), 0xc000 is -2
 * if (halfToFloat(0x3c00) !== 1 || halfToFloat(0xc000) !== -2) throw new Error("wrong half decode");
 * ```
 */
export function halfToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (mantissa / 1024);
  if (exponent === 0x1f) return mantissa ? NaN : sign * Infinity;
  return sign * 2 ** (exponent - 15) * (1 + mantissa / 1024);
}

/**
 * Convert a bfloat16 bit pattern (the top half of a float32) to a number.
 *
 * value = float32(bits << 16)
 *
 * @param bits the 16-bit pattern
 * @returns the value
 * @example
 * ```ts
 * import { bfloat16ToFloat } from "../../mod.ts";
 * // bfloat16 is the top half of a float32: 0x3f80 -> 0x3f800000 = 1, 0xc000 -> -2
 * if (bfloat16ToFloat(0x3f80) !== 1 || bfloat16ToFloat(0xc000) !== -2) throw new Error("wrong bfloat16 decode");
 * ```
 */
export function bfloat16ToFloat(bits: number): number {
  const scratch = new DataView(new ArrayBuffer(4));
  scratch.setUint32(0, bits << 16);
  return scratch.getFloat32(0);
}

/** One tensor to write: its shape and float32 values, row-major. */
export interface SafetensorsTensorInput {
  /** The dimensions. */
  shape: readonly number[];
  /** The values, row-major. */
  data: Float32Array;
}

/**
 * Write tensors as a safetensors file (all F32), the inverse of `parseSafetensors`.
 *
 * bytes = u64le(n) ++ header_json[n] ++ tensors back to back; the header is padded with spaces to a multiple of 8
 * bytes, as the reference implementation does, so every tensor starts 8-byte aligned
 *
 * @param tensors the tensors by name, in the order they are stored
 * @param metadata the optional `__metadata__` string map
 * @returns the file's bytes
 * @throws RangeError naming the tensor when its shape does not match its data or a name is `__metadata__`
 * @example
 * ```ts
 * import { parseSafetensors, serializeSafetensors } from "../../mod.ts";
 * const bytes = serializeSafetensors({ x: { shape: [2], data: new Float32Array([1, 2]) } });
 * const x = parseSafetensors(bytes).tensors.get("x");
 * if (x?.data.join() !== "1,2") throw new Error("the round trip lost the values");
 * ```
 */
export function serializeSafetensors(
  tensors: Readonly<Record<string, SafetensorsTensorInput>>,
  metadata?: Readonly<Record<string, string>>,
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) {
    for (const [key, value] of Object.entries(metadata)) {
      if (typeof value !== "string") throw new TypeError(`Metadata value ${key} must be a string, got ${typeof value}`);
    }
    header.__metadata__ = { ...metadata };
  }
  let offset = 0;
  const entries = Object.entries(tensors);
  for (const [name, { shape, data }] of entries) {
    if (name === "__metadata__") throw new RangeError("A tensor cannot be named __metadata__");
    if (!(data instanceof Float32Array)) throw new TypeError(`Tensor ${name} must hold a Float32Array`);
    const count = shape.reduce((a, b) => a * b, 1);
    if (!shape.every((d) => Number.isInteger(d) && d >= 0) || count !== data.length) {
      throw new RangeError(`Tensor ${name} has shape [${shape.join(", ")}] but ${data.length} values`);
    }
    header[name] = { dtype: "F32", shape: [...shape], data_offsets: [offset, offset + 4 * count] };
    offset += 4 * count;
  }
  let json = JSON.stringify(header);
  // pad with spaces so that the data section starts at a multiple of 8
  json += " ".repeat((8 - (new TextEncoder().encode(json).length % 8)) % 8);
  const headerBytes = new TextEncoder().encode(json);
  const bytes = new Uint8Array(8 + headerBytes.length + offset);
  const view = new DataView(bytes.buffer);
  view.setBigUint64(0, BigInt(headerBytes.length), true);
  bytes.set(headerBytes, 8);
  let position = 8 + headerBytes.length;
  for (const [, { data }] of entries) {
    for (let i = 0; i < data.length; i++) view.setFloat32(position + 4 * i, data[i], true);
    position += 4 * data.length;
  }
  return bytes;
}
