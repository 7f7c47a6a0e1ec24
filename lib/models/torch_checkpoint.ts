/**
 * A reader for PyTorch's zip-format checkpoints (`torch.save` since 1.6, e.g. `diffusion_pytorch_model.bin`),
 * without executing pickle code.
 *
 * The archive holds `<name>/data.pkl` (a pickle of the state dict whose tensors point at storages by persistent
 * id) and `<name>/data/<key>` (the raw little-endian storages). A small zip reader finds the entries and a
 * restricted unpickler interprets only the opcodes `torch.save` writes for a state dict, with only the globals
 * `collections.OrderedDict`, `torch._utils._rebuild_tensor_v2`, `torch._utils._rebuild_parameter` and the
 * `torch.*Storage` classes. Any other opcode or global is refused with its name, so a malicious file cannot run
 * code.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import { inflateRawSync } from "node:zlib";
import { bfloat16ToFloat, halfToFloat } from "./safetensors.ts";
import { formatBytes, MAX_TENSOR_ELEMENTS, MAX_ZIP_EXPANSION, MAX_ZIP_MEMBER_BYTES } from "../core/_limits.ts";

/** One tensor of a PyTorch checkpoint, as float32. */
export interface TorchTensor {
  /** The storage's element type (`"FloatStorage"`, `"HalfStorage"`, ...). */
  storageType: string;
  /** The dimensions. */
  shape: number[];
  /** The values as float32, row-major (contiguous even when the tensor was a strided view). */
  data: Float32Array;
}

/** One stored entry of a zip archive. */
export interface ZipEntry {
  /** The path inside the archive. */
  name: string;
  /** The uncompressed size the central directory declares, in bytes (known before reading). */
  size: number;
  /** The entry's contents (uncompressed); refused when larger than declared or than the limits allow. */
  read(): Uint8Array;
}

/**
 * List the entries of a zip archive (stored or deflated; zip64 aware).
 *
 * @param bytes the archive
 * @param source a name for error messages
 * @returns the entries by name
 * @throws Error when the archive is truncated or not a zip file
 * @example
 * ```ts
 * import { readZip } from "../../mod.ts";
 * import { readFileSync } from "node:fs";
 * const entries = readZip(readFileSync("test/fixtures/unet/tiny-ddpm/diffusion_pytorch_model.bin"), "bin");
 * // torch.save's zip format holds the pickle as <archive>/data.pkl
 * if (![...entries.keys()].some((n) => n.endsWith("data.pkl"))) throw new Error("no data.pkl in the archive");
 * ```
 */
export function readZip(bytes: Uint8Array, source: string): Map<string, ZipEntry> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let eocd = -1;
  for (let i = bytes.length - 22; i >= Math.max(0, bytes.length - 22 - 65535); i--) {
    if (view.getUint32(i, true) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error(`${source} is not a zip archive or is truncated (no end-of-central-directory record)`);
  let count = view.getUint16(eocd + 10, true);
  let dirOffset = view.getUint32(eocd + 16, true);
  if ((count === 0xffff || dirOffset === 0xffffffff) && eocd >= 20 && view.getUint32(eocd - 20, true) === 0x07064b50) {
    const record = Number(view.getBigUint64(eocd - 12, true));
    if (record + 56 > bytes.length || view.getUint32(record, true) !== 0x06064b50) {
      throw new Error(`${source} has a corrupt zip64 end-of-central-directory record`);
    }
    count = Number(view.getBigUint64(record + 32, true));
    dirOffset = Number(view.getBigUint64(record + 48, true));
  }
  const entries = new Map<string, ZipEntry>();
  let p = dirOffset;
  for (let n = 0; n < count; n++) {
    if (p + 46 > bytes.length || view.getUint32(p, true) !== 0x02014b50) {
      throw new Error(`${source} has a corrupt zip central directory (entry ${n} at byte ${p})`);
    }
    const method = view.getUint16(p + 10, true);
    let compressed = view.getUint32(p + 20, true);
    let size = view.getUint32(p + 24, true);
    const nameLength = view.getUint16(p + 28, true);
    const extraLength = view.getUint16(p + 30, true);
    const commentLength = view.getUint16(p + 32, true);
    let local = view.getUint32(p + 42, true);
    const name = new TextDecoder().decode(bytes.subarray(p + 46, p + 46 + nameLength));
    // zip64 extra field (id 1): the 64-bit values of the fields saturated at 0xffffffff, in this order
    for (let e = p + 46 + nameLength; e + 4 <= p + 46 + nameLength + extraLength;) {
      const id = view.getUint16(e, true);
      const length = view.getUint16(e + 2, true);
      if (id === 1) {
        let q = e + 4;
        if (size === 0xffffffff) (size = Number(view.getBigUint64(q, true))), (q += 8);
        if (compressed === 0xffffffff) (compressed = Number(view.getBigUint64(q, true))), (q += 8);
        if (local === 0xffffffff) local = Number(view.getBigUint64(q, true));
      }
      e += 4 + length;
    }
    p += 46 + nameLength + extraLength + commentLength;
    entries.set(name, {
      name,
      size,
      read() {
        if (local + 30 > bytes.length || view.getUint32(local, true) !== 0x04034b50) {
          throw new Error(`${source}: zip entry ${name} has a corrupt local header at byte ${local}`);
        }
        const start = local + 30 + view.getUint16(local + 26, true) + view.getUint16(local + 28, true);
        if (start + compressed > bytes.length) {
          throw new Error(
            `${source} is truncated: entry ${name} needs bytes up to ${
              start + compressed
            } but the file has ${bytes.length}`,
          );
        }
        const raw = bytes.subarray(start, start + compressed);
        if (method === 0) {
          if (compressed !== size) {
            throw new Error(`${source}: stored zip entry ${name} declares ${size} bytes but holds ${compressed}`);
          }
          return raw;
        }
        if (method === 8) {
          // Refuse before inflating: a member may not declare more than the limit or expand like a zip bomb, and
          // inflation stops at the declared size, so a member that lies about its size cannot expand further.
          if (size > MAX_ZIP_MEMBER_BYTES) {
            throw new Error(
              `${source}: zip entry ${name} inflates to ${formatBytes(size)}, more than the limit of ${
                formatBytes(MAX_ZIP_MEMBER_BYTES)
              }`,
            );
          }
          if (size > 2 ** 20 && size > MAX_ZIP_EXPANSION * compressed) {
            throw new Error(
              `${source}: zip entry ${name} would inflate ${compressed} bytes to ${formatBytes(size)} (${
                Math.round(size / compressed)
              }x); more than ${MAX_ZIP_EXPANSION}x is refused as a zip bomb`,
            );
          }
          let inflated: Uint8Array;
          try {
            inflated = inflateRawSync(raw, { maxOutputLength: Math.max(size, 1) });
          } catch (error) {
            throw new Error(
              `${source}: zip entry ${name} does not inflate to its declared ${size} bytes (${
                error instanceof Error ? error.message : error
              })`,
            );
          }
          if (inflated.length !== size) {
            throw new Error(`${source}: zip entry ${name} inflates to ${inflated.length} bytes but declares ${size}`);
          }
          return new Uint8Array(inflated.buffer, inflated.byteOffset, inflated.length);
        }
        throw new Error(
          `${source}: zip entry ${name} uses compression method ${method}; only stored (0) and deflate (8) are supported`,
        );
      },
    });
  }
  return entries;
}

const storageTypes: Record<string, { size: number; read: (v: DataView, i: number) => number }> = {
  FloatStorage: { size: 4, read: (v, i) => v.getFloat32(i * 4, true) },
  DoubleStorage: { size: 8, read: (v, i) => v.getFloat64(i * 8, true) },
  HalfStorage: { size: 2, read: (v, i) => halfToFloat(v.getUint16(i * 2, true)) },
  BFloat16Storage: { size: 2, read: (v, i) => bfloat16ToFloat(v.getUint16(i * 2, true)) },
  LongStorage: { size: 8, read: (v, i) => Number(v.getBigInt64(i * 8, true)) },
  IntStorage: { size: 4, read: (v, i) => v.getInt32(i * 4, true) },
  ShortStorage: { size: 2, read: (v, i) => v.getInt16(i * 2, true) },
  CharStorage: { size: 1, read: (v, i) => v.getInt8(i) },
  ByteStorage: { size: 1, read: (v, i) => v.getUint8(i) },
  BoolStorage: { size: 1, read: (v, i) => v.getUint8(i) },
};

class Global {
  constructor(readonly module: string, readonly name: string) {}
}
class StorageRef {
  constructor(readonly type: string, readonly key: string, readonly numel: number) {}
}
class Mark {}
const mark = new Mark();
type PickleValue = unknown;

/**
 * Read the tensors of a PyTorch zip-format checkpoint (`torch.save(state_dict)`), running no pickle code.
 *
 * tensor = storage[offset + sum_i index_i stride_i], gathered row-major over size
 *
 * @param path the `.bin` / `.pt` file
 * @returns the tensors by state_dict key, as float32
 * @throws Error naming the opcode or global when data.pkl holds anything but tensors, or when the file is truncated
 * @example
 * ```ts
 * import { readTorchCheckpoint } from "../../mod.ts";
 * const tensors = readTorchCheckpoint("test/fixtures/unet/tiny-ddpm/diffusion_pytorch_model.bin");
 * // conv_in maps 3 channels to block_out_channels[0] = 32 (the fixture's config.json) with a 3x3 kernel
 * if (tensors.get("conv_in.weight")?.shape.join() !== "32,3,3,3") throw new Error("wrong conv_in.weight");
 * ```
 */
export function readTorchCheckpoint(path: string): Map<string, TorchTensor> {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new Error(`Cannot read PyTorch checkpoint ${path}: ${error instanceof Error ? error.message : error}`);
  }
  return parseTorchCheckpoint(bytes, path);
}

/**
 * Parse the bytes of a PyTorch zip-format checkpoint.
 *
 * @param bytes the whole file
 * @param source a name for error messages
 * @returns the tensors by state_dict key, as float32
 * @example
 * ```ts
 * import { parseTorchCheckpoint } from "../../mod.ts";
 * import { readFileSync } from "node:fs";
 * const path = "test/fixtures/unet/tiny-ddpm/diffusion_pytorch_model.bin";
 * const tensors = parseTorchCheckpoint(readFileSync(path), path);
 * if (!tensors.has("conv_out.bias")) throw new Error("a UNet2DModel state dict ends with conv_out");
 * ```
 */
export function parseTorchCheckpoint(bytes: Uint8Array, source = "PyTorch checkpoint"): Map<string, TorchTensor> {
  if (bytes.length >= 2 && bytes[0] === 0x80 && bytes[1] === 0x02) {
    throw new Error(
      `${source} uses the legacy (pre-1.6) torch.save format, which is not supported; re-save it with a current PyTorch or as safetensors`,
    );
  }
  if (bytes.length < 4 || bytes[0] !== 0x50 || bytes[1] !== 0x4b) {
    throw new Error(`${source} is not a PyTorch zip checkpoint (it does not start with a zip header)`);
  }
  const entries = readZip(bytes, source);
  const pklName = [...entries.keys()].find((n) => n === "data.pkl" || n.endsWith("/data.pkl"));
  if (pklName === undefined) throw new Error(`${source} has no data.pkl entry: not a torch.save archive`);
  const prefix = pklName.slice(0, pklName.length - "data.pkl".length);
  const byteorder = entries.get(`${prefix}byteorder`);
  if (byteorder !== undefined) {
    const order = new TextDecoder().decode(byteorder.read()).trim();
    if (order !== "little") {
      throw new Error(`${source} stores tensors in ${order}-endian byte order; only little is supported`);
    }
  }
  const root = unpickle(entries.get(pklName)!.read(), `${source}:${pklName}`);
  if (!(root instanceof Map)) {
    throw new Error(`${source} does not hold a state dict (a dict of tensors) but ${describePickle(root)}`);
  }
  const storages = new Map<string, Uint8Array>();
  const out = new Map<string, TorchTensor>();
  for (const [key, value] of root) {
    if (typeof key !== "string") throw new Error(`${source} has a non-string state dict key ${describePickle(key)}`);
    if (!(value instanceof RebuiltTensor)) {
      throw new Error(`${source} holds ${describePickle(value)} under key ${key}, not a tensor`);
    }
    let raw = storages.get(value.storage.key);
    if (raw === undefined) {
      const entry = entries.get(`${prefix}data/${value.storage.key}`);
      if (entry === undefined) throw new Error(`${source} has no storage data/${value.storage.key} for tensor ${key}`);
      // Everything about the view is checked against the storage's declared size before reading it.
      value.check(entry.size, `${source}: tensor ${key}`);
      raw = entry.read();
      storages.set(value.storage.key, raw);
    }
    out.set(key, value.materialize(raw, `${source}: tensor ${key}`));
  }
  return out;
}

class RebuiltTensor {
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {}

  /**
   * Refuse a view that does not fit its storage, before anything is read or allocated: a negative offset, a last
   * element past the storage's end, more elements than the limit, or a storage file smaller than its elements.
   */
  check(storageBytes: number, what: string): void {
    const type = storageTypes[this.storage.type];
    const numel = this.shape.reduce((a, b) => a * b, 1);
    if (this.offset < 0) throw new Error(`${what} starts at storage offset ${this.offset}, which is negative`);
    if (numel > MAX_TENSOR_ELEMENTS) {
      throw new Error(
        `${what} has ${numel} elements (shape [${
          this.shape.join(", ")
        }]), more than the limit of ${MAX_TENSOR_ELEMENTS}`,
      );
    }
    if (storageBytes < this.storage.numel * type.size) {
      throw new Error(
        `${what}: storage holds ${storageBytes} bytes but ${this.storage.numel} ${this.storage.type} elements need ${
          this.storage.numel * type.size
        }`,
      );
    }
    let last = this.offset;
    this.shape.forEach((d, i) => (last += d > 0 ? (d - 1) * this.stride[i] : 0));
    if (numel > 0 && last >= this.storage.numel) {
      throw new Error(
        `${what} (offset ${this.offset}, shape [${this.shape.join(", ")}], strides [${
          this.stride.join(", ")
        }]) reaches element ${last} of a storage of ${this.storage.numel}`,
      );
    }
  }

  materialize(raw: Uint8Array, what: string): TorchTensor {
    this.check(raw.length, what);
    const numel = this.shape.reduce((a, b) => a * b, 1);
    const type = storageTypes[this.storage.type];
    let contiguous = true;
    for (let i = this.shape.length - 1, expected = 1; i >= 0; i--) {
      if (this.shape[i] !== 1 && this.stride[i] !== expected) contiguous = false;
      expected *= this.shape[i];
    }
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const shape = [...this.shape];
    if (contiguous && this.storage.type === "FloatStorage") {
      const start = raw.byteOffset + this.offset * 4;
      // Not aligned (a stored zip member may start anywhere): copy the bytes. `new Uint8Array(view)` copies;
      // `slice` would not for a Node Buffer, whose `slice` is a view onto the whole file.
      const data = start % 4 === 0
        ? new Float32Array(raw.buffer, start, numel)
        : new Float32Array(new Uint8Array(raw.subarray(this.offset * 4, (this.offset + numel) * 4)).buffer);
      return { storageType: this.storage.type, shape, data };
    }
    const data = new Float32Array(numel);
    const index = new Array(shape.length).fill(0);
    for (let n = 0; n < numel; n++) {
      let at = this.offset;
      for (let i = 0; i < shape.length; i++) at += index[i] * this.stride[i];
      data[n] = type.read(view, at);
      for (let i = shape.length - 1; i >= 0; i--) {
        if (++index[i] < shape[i]) break;
        index[i] = 0;
      }
    }
    return { storageType: this.storage.type, shape, data };
  }
}

const opcodeNames: Record<number, string> = {
  0x28: "MARK",
  0x2e: "STOP",
  0x30: "POP",
  0x31: "POP_MARK",
  0x32: "DUP",
  0x46: "FLOAT",
  0x49: "INT",
  0x4a: "BININT",
  0x4b: "BININT1",
  0x4c: "LONG",
  0x4d: "BININT2",
  0x4e: "NONE",
  0x50: "PERSID",
  0x51: "BINPERSID",
  0x52: "REDUCE",
  0x53: "STRING",
  0x54: "BINSTRING",
  0x55: "SHORT_BINSTRING",
  0x56: "UNICODE",
  0x58: "BINUNICODE",
  0x61: "APPEND",
  0x62: "BUILD",
  0x63: "GLOBAL",
  0x64: "DICT",
  0x7d: "EMPTY_DICT",
  0x65: "APPENDS",
  0x67: "GET",
  0x68: "BINGET",
  0x69: "INST",
  0x6a: "LONG_BINGET",
  0x6c: "LIST",
  0x5d: "EMPTY_LIST",
  0x6f: "OBJ",
  0x70: "PUT",
  0x71: "BINPUT",
  0x72: "LONG_BINPUT",
  0x73: "SETITEM",
  0x74: "TUPLE",
  0x29: "EMPTY_TUPLE",
  0x75: "SETITEMS",
  0x47: "BINFLOAT",
  0x80: "PROTO",
  0x81: "NEWOBJ",
  0x82: "EXT1",
  0x83: "EXT2",
  0x84: "EXT4",
  0x85: "TUPLE1",
  0x86: "TUPLE2",
  0x87: "TUPLE3",
  0x88: "NEWTRUE",
  0x89: "NEWFALSE",
  0x8a: "LONG1",
  0x8b: "LONG4",
  0x8c: "SHORT_BINUNICODE",
  0x8d: "BINUNICODE8",
  0x8e: "BINBYTES8",
  0x8f: "EMPTY_SET",
  0x90: "ADDITEMS",
  0x91: "FROZENSET",
  0x92: "NEWOBJ_EX",
  0x93: "STACK_GLOBAL",
  0x94: "MEMOIZE",
  0x95: "FRAME",
  0x42: "BINBYTES",
  0x43: "SHORT_BINBYTES",
};

const allowedGlobals = new Set([
  "collections.OrderedDict",
  "torch._utils._rebuild_tensor_v2",
  "torch._utils._rebuild_parameter",
  ...Object.keys(storageTypes).map((t) => `torch.${t}`),
]);

/**
 * Interpret a torch.save pickle with only the opcodes and globals a state dict of tensors needs.
 *
 * @param bytes the pickle (data.pkl)
 * @param source a name for error messages
 * @returns the unpickled value (Maps for dicts, arrays for tuples and lists)
 * @throws Error naming any other opcode or global
 * @example
 * ```ts
 * import { unpickleStateDict } from "../../mod.ts";
 * // PROTO 2, EMPTY_DICT, STOP: the pickle of {}
 * const value = unpickleStateDict(new Uint8Array([0x80, 0x02, 0x7d, 0x2e]), "empty");
 * if (!(value instanceof Map) || value.size !== 0) throw new Error("the pickle of {} is an empty Map");
 * ```
 */
export function unpickleStateDict(bytes: Uint8Array, source: string): unknown {
  return unpickle(bytes, source);
}

function unpickle(bytes: Uint8Array, source: string): PickleValue {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stack: PickleValue[] = [];
  const memo = new Map<number, PickleValue>();
  const decoder = new TextDecoder();
  let p = 0;
  const need = (n: number) => {
    if (p + n > bytes.length) throw new Error(`${source} is truncated at byte ${p}`);
  };
  const popMark = (): PickleValue[] => {
    const at = stack.lastIndexOf(mark);
    if (at < 0) throw new Error(`${source}: pickle stack has no MARK at byte ${p}`);
    return stack.splice(at).slice(1);
  };
  const pop = (): PickleValue => {
    if (stack.length === 0) throw new Error(`${source}: pickle stack underflow at byte ${p}`);
    return stack.pop();
  };
  const setItems = (dict: PickleValue, items: PickleValue[]) => {
    if (!(dict instanceof Map)) throw new Error(`${source}: SETITEM(S) on ${describePickle(dict)}, not a dict`);
    for (let i = 0; i + 1 < items.length; i += 2) dict.set(items[i], items[i + 1]);
  };
  while (true) {
    need(1);
    const at = p;
    const op = bytes[p++];
    switch (op) {
      case 0x80:
        need(1);
        p += 1;
        break; // PROTO
      case 0x95:
        need(8);
        p += 8;
        break; // FRAME
      case 0x2e:
        if (stack.length !== 1) throw new Error(`${source}: pickle ends with ${stack.length} values on the stack`);
        return stack[0];
      case 0x28:
        stack.push(mark);
        break;
      case 0x7d:
        stack.push(new Map());
        break; // EMPTY_DICT
      case 0x5d:
        stack.push([]);
        break; // EMPTY_LIST
      case 0x29:
        stack.push([]);
        break; // EMPTY_TUPLE
      case 0x74:
        stack.push(popMark());
        break; // TUPLE
      case 0x85:
        stack.push([pop()]);
        break;
      case 0x86: {
        const b = pop();
        const a = pop();
        stack.push([a, b]);
        break;
      }
      case 0x87: {
        const c = pop();
        const b = pop();
        const a = pop();
        stack.push([a, b, c]);
        break;
      }
      case 0x71:
        need(1);
        memo.set(bytes[p], stack[stack.length - 1]);
        p += 1;
        break; // BINPUT
      case 0x72:
        need(4);
        memo.set(view.getUint32(p, true), stack[stack.length - 1]);
        p += 4;
        break; // LONG_BINPUT
      case 0x94:
        memo.set(memo.size, stack[stack.length - 1]);
        break; // MEMOIZE
      case 0x68:
        need(1);
        stack.push(memoGet(memo, bytes[p], source));
        p += 1;
        break; // BINGET
      case 0x6a:
        need(4);
        stack.push(memoGet(memo, view.getUint32(p, true), source));
        p += 4;
        break; // LONG_BINGET
      case 0x4a:
        need(4);
        stack.push(view.getInt32(p, true));
        p += 4;
        break; // BININT
      case 0x4b:
        need(1);
        stack.push(bytes[p]);
        p += 1;
        break; // BININT1
      case 0x4d:
        need(2);
        stack.push(view.getUint16(p, true));
        p += 2;
        break; // BININT2
      case 0x8a: { // LONG1
        need(1);
        const n = bytes[p++];
        need(n);
        let value = 0n;
        for (let i = n - 1; i >= 0; i--) value = (value << 8n) | BigInt(bytes[p + i]);
        if (n > 0 && bytes[p + n - 1] & 0x80) value -= 1n << BigInt(8 * n);
        stack.push(Number(value));
        p += n;
        break;
      }
      case 0x47:
        need(8);
        stack.push(view.getFloat64(p, false));
        p += 8;
        break; // BINFLOAT (big-endian)
      case 0x58: {
        need(4);
        const n = view.getUint32(p, true);
        p += 4;
        need(n);
        stack.push(decoder.decode(bytes.subarray(p, p + n)));
        p += n;
        break;
      }
      case 0x8c: {
        need(1);
        const n = bytes[p++];
        need(n);
        stack.push(decoder.decode(bytes.subarray(p, p + n)));
        p += n;
        break;
      }
      case 0x88:
        stack.push(true);
        break;
      case 0x89:
        stack.push(false);
        break;
      case 0x4e:
        stack.push(null);
        break;
      case 0x63: { // GLOBAL "module\nname\n"
        const end1 = bytes.indexOf(0x0a, p);
        const end2 = end1 < 0 ? -1 : bytes.indexOf(0x0a, end1 + 1);
        if (end2 < 0) throw new Error(`${source} is truncated inside a GLOBAL at byte ${at}`);
        stack.push(
          makeGlobal(decoder.decode(bytes.subarray(p, end1)), decoder.decode(bytes.subarray(end1 + 1, end2)), source),
        );
        p = end2 + 1;
        break;
      }
      case 0x93: {
        const name = pop();
        const module = pop();
        stack.push(makeGlobal(String(module), String(name), source));
        break;
      }
      case 0x51:
        stack.push(persistentLoad(pop(), source));
        break; // BINPERSID
      case 0x52: {
        const args = pop();
        const fn = pop();
        stack.push(callGlobal(fn, args, source));
        break;
      } // REDUCE
      case 0x73: {
        const v = pop();
        const k = pop();
        setItems(stack[stack.length - 1], [k, v]);
        break;
      }
      case 0x75: {
        const items = popMark();
        setItems(stack[stack.length - 1], items);
        break;
      }
      case 0x61: {
        const v = pop();
        const list = stack[stack.length - 1];
        if (!Array.isArray(list)) throw new Error(`${source}: APPEND on ${describePickle(list)}`);
        list.push(v);
        break;
      }
      case 0x65: {
        const items = popMark();
        const list = stack[stack.length - 1];
        if (!Array.isArray(list)) throw new Error(`${source}: APPENDS on ${describePickle(list)}`);
        list.push(...items);
        break;
      }
      case 0x62: { // BUILD: only the OrderedDict's `_metadata` state that state_dict() attaches
        const state = pop();
        const target = stack[stack.length - 1];
        if (!(target instanceof Map)) {
          throw new Error(
            `${source}: BUILD on ${describePickle(target)} is not allowed (only a state dict's metadata)`,
          );
        }
        void state;
        break;
      }
      default:
        throw new Error(
          `${source} uses pickle opcode ${opcodeNames[op] ?? "unknown"} (0x${
            op.toString(16)
          }) at byte ${at}, which a torch.save state dict does not need; refusing to interpret it`,
        );
    }
  }
}

function memoGet(memo: Map<number, PickleValue>, key: number, source: string): PickleValue {
  if (!memo.has(key)) throw new Error(`${source}: pickle memo has no entry ${key}`);
  return memo.get(key);
}

function makeGlobal(module: string, name: string, source: string): Global {
  const full = `${module}.${name}`;
  if (!allowedGlobals.has(full)) {
    throw new Error(
      `${source} references the global ${full}, which is not a tensor or a state dict; refusing to load it`,
    );
  }
  return new Global(module, name);
}

function persistentLoad(pid: PickleValue, source: string): StorageRef {
  if (!Array.isArray(pid) || pid[0] !== "storage" || !(pid[1] instanceof Global)) {
    throw new Error(`${source}: unsupported persistent id ${describePickle(pid)}`);
  }
  const type = (pid[1] as Global).name;
  if (!(type in storageTypes)) throw new Error(`${source}: unsupported storage type torch.${type}`);
  return new StorageRef(type, String(pid[2]), Number(pid[4]));
}

function callGlobal(fn: PickleValue, args: PickleValue, source: string): PickleValue {
  if (!(fn instanceof Global) || !Array.isArray(args)) {
    throw new Error(`${source}: REDUCE may only call an allowed global with a tuple, got ${describePickle(fn)}`);
  }
  const full = `${fn.module}.${fn.name}`;
  if (full === "collections.OrderedDict") {
    if (args.length !== 0) throw new Error(`${source}: OrderedDict called with ${args.length} arguments`);
    return new Map();
  }
  if (full === "torch._utils._rebuild_parameter") return args[0];
  if (full === "torch._utils._rebuild_tensor_v2") {
    const [storage, offset, size, stride] = args;
    const ints = (v: PickleValue) => Array.isArray(v) && v.every((d) => Number.isInteger(d) && d >= 0);
    if (
      !(storage instanceof StorageRef) || !Number.isInteger(offset) || !ints(size) || !ints(stride) ||
      (size as number[]).length !== (stride as number[]).length
    ) {
      throw new Error(`${source}: malformed _rebuild_tensor_v2 arguments ${describePickle(args)}`);
    }
    return new RebuiltTensor(storage, offset as number, size as number[], stride as number[]);
  }
  throw new Error(`${source}: calling ${full} is not allowed`);
}

function describePickle(value: PickleValue): string {
  if (value instanceof Map) return `a dict of ${value.size} entries`;
  if (value instanceof Global) return `the global ${value.module}.${value.name}`;
  if (value instanceof RebuiltTensor) return "a tensor";
  if (Array.isArray(value)) return `a tuple/list of ${value.length} items`;
  return `${typeof value} ${JSON.stringify(value)}`;
}
