import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseTorchCheckpoint, readTorchCheckpoint, readZip, unpickleStateDict } from "../lib/torch_checkpoint.ts";
import { readSafetensors } from "../lib/safetensors.ts";

const fixture = fileURLToPath(new URL("../../shared/fixtures/unet/tiny-ddpm/", import.meta.url));

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
});
