import { describe, expect, test } from "bun:test";
import { Buffer } from "node:buffer";
import { readFileSync } from "node:fs";
import { deflateRawSync } from "node:zlib";
import { fileURLToPath } from "node:url";
import {
  parseTorchCheckpoint,
  readTorchCheckpoint,
  readZip,
  unpickleStateDict,
} from "../../lib/models/torch_checkpoint.ts";
import { readSafetensors } from "../../lib/models/safetensors.ts";

const fixture = fileURLToPath(new URL("../fixtures/unet/tiny-ddpm/", import.meta.url));

/** A minimal zip writer (stored entries), to build archives torch.save would not write. */
function zip(entries: Record<string, Uint8Array>): Uint8Array {
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  const enc = new TextEncoder();
  for (const [name, data] of Object.entries(entries)) {
    const n = enc.encode(name);
    const local = new Uint8Array(30 + n.length);
    const lv = new DataView(local.buffer);
    lv.setUint32(0, 0x04034b50, true);
    lv.setUint32(18, data.length, true);
    lv.setUint32(22, data.length, true);
    lv.setUint16(26, n.length, true);
    local.set(n, 30);
    const dir = new Uint8Array(46 + n.length);
    const dv = new DataView(dir.buffer);
    dv.setUint32(0, 0x02014b50, true);
    dv.setUint32(20, data.length, true);
    dv.setUint32(24, data.length, true);
    dv.setUint16(28, n.length, true);
    dv.setUint32(42, offset, true);
    dir.set(n, 46);
    parts.push(local, data);
    central.push(dir);
    offset += local.length + data.length;
  }
  const dirSize = central.reduce((a, b) => a + b.length, 0);
  const end = new Uint8Array(22);
  const ev = new DataView(end.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, central.length, true);
  ev.setUint16(10, central.length, true);
  ev.setUint32(12, dirSize, true);
  ev.setUint32(16, offset, true);
  const all = [...parts, ...central, end];
  const out = new Uint8Array(all.reduce((a, b) => a + b.length, 0));
  let p = 0;
  for (const a of all) (out.set(a, p), (p += a.length));
  return out;
}

const bytes = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));

/** Pickle opcode BININT (J): a signed 32-bit little-endian integer. */
function int(value: number): string {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, value, true);
  return `J${String.fromCharCode(...b)}`;
}

/** The pickle torch.save writes for {"w": tensor}: _rebuild_tensor_v2(storage '0', offset, size, stride, ...). */
function tensorPickle(type: string, numel: number, offset: number, size: number[], stride: number[]): Uint8Array {
  const tuple = (values: number[]) => `(${values.map(int).join("")}t`;
  return bytes(
    `\x80\x02}X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\n${type}\n` +
      `X\x01\x00\x00\x000X\x03\x00\x00\x00cpu${int(numel)}tQ${int(offset)}${tuple(size)}${tuple(stride)}` +
      "\x89ccollections\nOrderedDict\n)RtRs.",
  );
}

describe("PyTorch zip checkpoint reader", () => {
  test("reads every tensor of the fixture's .bin, equal to its safetensors twin under the 2022 names", () => {
    const bin = readTorchCheckpoint(`${fixture}diffusion_pytorch_model.bin`);
    const reference = readSafetensors(`${fixture}diffusion_pytorch_model.safetensors`).tensors;
    expect(bin.size).toBe(reference.size);
    expect(bin.has("mid_block.attentions.0.query.weight")).toBe(true); // README.txt: 2022 key names
    expect(bin.has("mid_block.attentions.0.proj_attn.bias")).toBe(true);
    const current = (k: string) =>
      k.replace(".query.", ".to_q.").replace(".key.", ".to_k.").replace(".value.", ".to_v.").replace(
        ".proj_attn.",
        ".to_out.0.",
      );
    for (const [key, tensor] of bin) {
      const twin = reference.get(current(key))!;
      expect(tensor.shape).toEqual(twin.shape);
      expect(tensor.data).toEqual(twin.data);
    }
  });

  test("a strided (transposed) HalfStorage tensor is gathered row-major", () => {
    // pickle of {"w": _rebuild_tensor_v2(storage('0', HalfStorage, numel 6), 0, (2, 3), (1, 2), False, OrderedDict())}
    const pkl = bytes(
      "\x80\x02}X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nHalfStorage\n" +
        "X\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x06tQK\x00K\x02K\x03\x86K\x01K\x02\x86\x89ccollections\nOrderedDict\n)RtRs.",
    );
    const storage = new Uint8Array(12);
    const halves = [0x3c00, 0x4000, 0x4200, 0x4400, 0x4500, 0x4600]; // 1, 2, 3, 4, 5, 6 in binary16
    halves.forEach((h, i) => new DataView(storage.buffer).setUint16(2 * i, h, true));
    const tensors = parseTorchCheckpoint(
      zip({ "m/data.pkl": pkl, "m/data/0": storage, "m/byteorder": bytes("little") }),
      "m.bin",
    );
    // storage [1..6] seen with size (2, 3) and stride (1, 2): rows [1, 3, 5] and [2, 4, 6]
    expect(tensors.get("w")!.shape).toEqual([2, 3]);
    expect([...tensors.get("w")!.data]).toEqual([1, 3, 5, 2, 4, 6]);
  });

  test("anything but tensors is refused, naming the opcode, the global or the value", () => {
    const evil = bytes("\x80\x02cos\nsystem\nX\x02\x00\x00\x00lsR.");
    expect(() => parseTorchCheckpoint(zip({ "a/data.pkl": evil }), "evil.bin")).toThrow(
      "evil.bin:a/data.pkl references the global os.system, which is not a tensor or a state dict; refusing to load it",
    );
    const builtins = bytes("\x80\x02c__builtin__\neval\n.");
    expect(() => parseTorchCheckpoint(zip({ "a/data.pkl": builtins }), "b.bin")).toThrow(/global __builtin__\.eval/);
    const inst = bytes("\x80\x02(i__main__\nX\n.");
    expect(() => unpickleStateDict(inst, "inst")).toThrow(/pickle opcode INST \(0x69\) at byte 3/);
    const notTensor = bytes("\x80\x02}X\x01\x00\x00\x00kK\x07s.");
    expect(() => parseTorchCheckpoint(zip({ "a/data.pkl": notTensor }), "n.bin")).toThrow(
      "n.bin holds number 7 under key k, not a tensor",
    );
    const list = bytes("\x80\x02]K\x01a.");
    expect(() => parseTorchCheckpoint(zip({ "a/data.pkl": list }), "l.bin")).toThrow(
      /does not hold a state dict .* but a tuple\/list of 1 items/,
    );
  });

  test("truncated, legacy and non-zip files get clear errors", () => {
    const whole = readFileSync(`${fixture}diffusion_pytorch_model.bin`);
    expect(() => parseTorchCheckpoint(whole.subarray(0, whole.length - 2000), "cut.bin")).toThrow(
      /cut\.bin is not a zip archive or is truncated/,
    );
    expect(() => parseTorchCheckpoint(bytes("\x80\x02\x8a\x0alegacy"), "old.pt")).toThrow(
      /legacy \(pre-1\.6\) torch\.save format/,
    );
    expect(() => parseTorchCheckpoint(bytes("hello world"), "txt")).toThrow(/not a PyTorch zip checkpoint/);
    expect(() => readTorchCheckpoint("/nonexistent.bin")).toThrow(/Cannot read PyTorch checkpoint \/nonexistent\.bin/);
    expect([...readZip(zip({ "x": bytes("abc") }), "z").keys()]).toEqual(["x"]);
  });

  test("a FloatStorage stored at an unaligned byte of the file gives its own values, with the right length", () => {
    const values = new Float32Array([1, 2, 3, 4, 5, 6]);
    const pkl = tensorPickle("FloatStorage", 6, 1, [2, 2], [2, 1]); // elements 1..4 of the storage: 2, 3, 4, 5
    for (const pad of [0, 1, 2, 3]) {
      // An extra entry of `pad` bytes before the storage moves its first byte by `pad`.
      const archive = zip({
        "m/data.pkl": pkl,
        "m/pad": new Uint8Array(pad),
        "m/data/0": new Uint8Array(values.buffer),
      });
      for (const file of [archive, Buffer.from(archive)]) {
        const w = parseTorchCheckpoint(file, "m.bin").get("w")!;
        expect(w.shape).toEqual([2, 2]);
        expect([...w.data]).toEqual([2, 3, 4, 5]);
      }
    }
  });

  test("a negative storage offset and a view past its storage are refused before the storage is read", () => {
    const storage = new Uint8Array(new Float32Array([1, 2, 3, 4]).buffer);
    const archive = (pkl: Uint8Array) => zip({ "m/data.pkl": pkl, "m/pad": new Uint8Array(4), "m/data/0": storage });
    expect(() => parseTorchCheckpoint(archive(tensorPickle("FloatStorage", 4, -1, [2], [1])), "neg.bin")).toThrow(
      "neg.bin: tensor w starts at storage offset -1, which is negative",
    );
    // shape [2, 2] with strides [3, 1] from offset 0 reaches element 1 * 3 + 1 * 1 = 4 of a 4-element storage
    expect(() => parseTorchCheckpoint(archive(tensorPickle("FloatStorage", 4, 0, [2, 2], [3, 1])), "past.bin")).toThrow(
      "past.bin: tensor w (offset 0, shape [2, 2], strides [3, 1]) reaches element 4 of a storage of 4",
    );
    // a stride-0 view of 2^31 elements (shape [65536, 32768]) is refused before 8 GiB are allocated
    expect(() => parseTorchCheckpoint(archive(tensorPickle("FloatStorage", 4, 0, [65536, 32768], [0, 0])), "huge.bin"))
      .toThrow("huge.bin: tensor w has 2147483648 elements (shape [65536, 32768]), more than the limit of 1073741824");
  });

  test("a deflated member that would expand like a zip bomb is refused before it is inflated", () => {
    // 64 MiB of zeros deflate to about 64 KiB (about 1000x); the archive is rewritten with the member deflated.
    const zeros = new Uint8Array(64 * 2 ** 20);
    const pkl = tensorPickle("FloatStorage", zeros.length / 4, 0, [zeros.length / 4], [1]);
    const deflated = deflateRawSync(zeros);
    const bomb = zipDeflated({ "m/data.pkl": pkl }, { "m/data/0": { data: deflated, size: zeros.length } });
    expect(() => parseTorchCheckpoint(bomb, "bomb.bin")).toThrow(
      /bomb\.bin: zip entry m\/data\/0 would inflate \d+ bytes to 64 MiB \(67108864 bytes\) \(\d+x\); more than 100x is refused as a zip bomb/,
    );
    // a member that declares fewer bytes than it inflates to stops at the declared size and is refused
    const liar = zipDeflated({ "m/data.pkl": pkl }, {
      "m/data/0": { data: deflateRawSync(new Uint8Array(4096)), size: 16 },
    });
    expect(() => parseTorchCheckpoint(liar, "liar.bin")).toThrow(
      /liar\.bin: tensor w: storage holds 16 bytes but 16777216/,
    );
    const liar2 = zipDeflated(
      { "m/data.pkl": tensorPickle("FloatStorage", 4, 0, [4], [1]) },
      { "m/data/0": { data: deflateRawSync(new Uint8Array(4096)), size: 16 } },
    );
    expect(() => parseTorchCheckpoint(liar2, "liar2.bin")).toThrow(
      /liar2\.bin: zip entry m\/data\/0 does not inflate to its declared 16 bytes/,
    );
  });
});

/** The zip writer above with some members deflated (method 8), each given its declared uncompressed size. */
function zipDeflated(stored: Record<string, Uint8Array>, deflated: Record<string, { data: Uint8Array; size: number }>) {
  const names = [...Object.keys(stored), ...Object.keys(deflated)];
  const archive = zip({ ...stored, ...Object.fromEntries(Object.entries(deflated).map(([k, v]) => [k, v.data])) });
  const view = new DataView(archive.buffer);
  // Patch the method (8) and the uncompressed size of the deflated members, in the local and central headers.
  let p = 0;
  for (const name of names) {
    const nameLength = view.getUint16(p + 26, true);
    const length = view.getUint32(p + 22, true);
    if (name in deflated) {
      view.setUint16(p + 8, 8, true);
      view.setUint32(p + 22, deflated[name].size, true);
    }
    p += 30 + nameLength + length;
  }
  for (const name of names) {
    const nameLength = view.getUint16(p + 28, true);
    if (name in deflated) {
      view.setUint16(p + 10, 8, true);
      view.setUint32(p + 24, deflated[name].size, true);
    }
    p += 46 + nameLength;
  }
  return archive;
}
