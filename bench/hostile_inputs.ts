/**
 * Peak memory on hostile inputs: each input below used to cost gigabytes (or seconds at 8 GB) before it failed;
 * now each is refused before allocating. Every case runs in a fresh child process, which reports its peak resident
 * memory (`process.resourceUsage().maxRSS`); the baseline is a child that imports the same modules and does
 * nothing. The figures go to docs/reliability.md; test/hostile_inputs.test.ts runs the same cases and bounds them.
 *
 * Standalone: `bun bench/hostile_inputs.ts` (prints a Markdown table).
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import process from "node:process";

/** One hostile input: the code that builds and feeds it (run inside a child), and what it used to cost. */
interface HostileCase {
  name: string;
  before: string;
  code: string;
}

const lib = (file: string) => JSON.stringify(new URL(`../lib/${file}`, import.meta.url).pathname);

/** Modules every child imports, so the baseline carries the same code. */
const IMPORTS = `
import { deflateRawSync } from "node:zlib";
import { decodeImage, encodePng } from ${lib("io/image.ts")};
import { parseTorchCheckpoint } from ${lib("models/torch_checkpoint.ts")};
import { parseSafetensors } from ${lib("models/safetensors.ts")};
import { DDIMScheduler } from ${lib("schedulers/ddim.ts")};
import { parseUNetConfig } from ${lib("models/unet_config.ts")};
`;

/** Helpers the cases share: a stored-or-deflated zip writer and torch.save's pickle for {"w": tensor}. */
const HELPERS = `
const bytes = (s) => Uint8Array.from(s, (c) => c.charCodeAt(0));
const int = (v) => { const b = new Uint8Array(4); new DataView(b.buffer).setInt32(0, v, true); return "J" + String.fromCharCode(...b); };
const tensorPickle = (numel, size, stride) => bytes("\\x80\\x02}X\\x01\\x00\\x00\\x00wctorch._utils\\n_rebuild_tensor_v2\\n((X\\x07\\x00\\x00\\x00storagectorch\\nFloatStorage\\nX\\x01\\x00\\x00\\x000X\\x03\\x00\\x00\\x00cpu" + int(numel) + "tQ" + int(0) + "(" + size.map(int).join("") + "t(" + stride.map(int).join("") + "t\\x89ccollections\\nOrderedDict\\n)RtRs.");
function zip(entries) {
  const parts = [], central = []; let offset = 0; const enc = new TextEncoder();
  for (const [name, { data, size, method }] of Object.entries(entries)) {
    const n = enc.encode(name);
    const local = new Uint8Array(30 + n.length); const lv = new DataView(local.buffer);
    lv.setUint32(0, 0x04034b50, true); lv.setUint16(8, method, true); lv.setUint32(18, data.length, true); lv.setUint32(22, size, true); lv.setUint16(26, n.length, true); local.set(n, 30);
    const dir = new Uint8Array(46 + n.length); const dv = new DataView(dir.buffer);
    dv.setUint32(0, 0x02014b50, true); dv.setUint16(10, method, true); dv.setUint32(20, data.length, true); dv.setUint32(24, size, true); dv.setUint16(28, n.length, true); dv.setUint32(42, offset, true); dir.set(n, 46);
    parts.push(local, data); central.push(dir); offset += local.length + data.length;
  }
  const end = new Uint8Array(22); const ev = new DataView(end.buffer);
  ev.setUint32(0, 0x06054b50, true); ev.setUint16(8, central.length, true); ev.setUint16(10, central.length, true);
  ev.setUint32(12, central.reduce((a, b) => a + b.length, 0), true); ev.setUint32(16, offset, true);
  const all = [...parts, ...central, end]; const out = new Uint8Array(all.reduce((a, b) => a + b.length, 0));
  let p = 0; for (const a of all) { out.set(a, p); p += a.length; } return out;
}
const stored = (data) => ({ data, size: data.length, method: 0 });
`;

/** The hostile inputs of issue 13 (and two of the same kind). */
export const HOSTILE_CASES: HostileCase[] = [
  {
    name: "PNG whose header says 20000x20000",
    before: "9.9 GB",
    code: `const png = new Uint8Array(encodePng({ width: 16, height: 16, data: new Uint8ClampedArray(1024) }));
new DataView(png.buffer).setUint32(16, 20000); new DataView(png.buffer).setUint32(20, 20000);
await decodeImage(png, { name: "bomb.png" });`,
  },
  {
    name: ".bin whose 611 KB member inflates to 600 MB",
    before: "600 MB",
    code: `const size = 600 * 2 ** 20;
const zeros = new Uint8Array(size); const deflated = deflateRawSync(zeros);
const archive = zip({ "m/data.pkl": stored(tensorPickle(size / 4, [size / 4], [1])), "m/data/0": { data: deflated, size, method: 8 } });
parseTorchCheckpoint(archive, "bomb.bin");`,
  },
  {
    name: ".bin with a stride-0 view of 2^31 elements",
    before: "an 8 GiB allocation",
    code:
      `const archive = zip({ "m/data.pkl": stored(tensorPickle(4, [65536, 32768], [0, 0])), "m/data/0": stored(new Uint8Array(16)) });
parseTorchCheckpoint(archive, "view.bin");`,
  },
  {
    name: "safetensors header claiming a 2^40-element tensor",
    before: "refused already (offsets checked)",
    code:
      `const header = new TextEncoder().encode(JSON.stringify({ w: { dtype: "F32", shape: [2 ** 20, 2 ** 20], data_offsets: [0, 2 ** 42] } }));
const file = new Uint8Array(8 + header.length + 16); new DataView(file.buffer).setBigUint64(0, BigInt(header.length), true); file.set(header, 8);
parseSafetensors(file, "huge.safetensors");`,
  },
  {
    name: "scheduler_config.json with num_train_timesteps 1e8",
    before: "over 45 s and 8 GB",
    code: `DDIMScheduler.fromConfig({ num_train_timesteps: 1e8 });`,
  },
  {
    name: "config.json with sample_size 100000 and 1e6 channels",
    before: "no limit (not measured)",
    code: `parseUNetConfig({ _class_name: "UNet2DModel", sample_size: 100000, in_channels: 1000000 }, "config.json");`,
  },
];

/** What one child reports. */
export interface HostileResult {
  name: string;
  before: string;
  /** The error the input was refused with (empty when it was not refused). */
  refused: string;
  /** Peak resident memory of the child, MiB. */
  peakMiB: number;
}

function runChild(body: string): { refused: string; peakMiB: number } {
  const script =
    `${IMPORTS}\n${HELPERS}\nlet refused = "";\ntry {\n${body}\n} catch (error) { refused = String(error?.message ?? error); }\n` +
    `console.log(JSON.stringify({ refused, peakMiB: process.resourceUsage().maxRSS / 1024 }));`;
  const run = spawnSync(process.execPath, ["-e", script], { encoding: "utf8", maxBuffer: 1 << 20 });
  const line = run.stdout.trim().split("\n").pop() ?? "";
  try {
    return JSON.parse(line);
  } catch {
    throw new Error(`the hostile-input child failed (status ${run.status}): ${run.stderr.slice(0, 2000)}`);
  }
}

/** Run every case, each in a fresh child; also the baseline (imports only). */
export function measureHostileInputs(): { baselineMiB: number; results: HostileResult[] } {
  const baselineMiB = runChild("").peakMiB;
  const results = HOSTILE_CASES.map(({ name, before, code }) => ({ name, before, ...runChild(code) }));
  return { baselineMiB, results };
}

if (import.meta.main) {
  const { baselineMiB, results } = measureHostileInputs();
  console.log(`Baseline (the modules imported, nothing run): ${baselineMiB.toFixed(0)} MiB peak resident memory.\n`);
  console.log("| hostile input | before | now: peak memory | refused with |");
  console.log("| --- | --- | --- | --- |");
  for (const r of results) {
    console.log(`| ${r.name} | ${r.before} | ${r.peakMiB.toFixed(0)} MiB | ${r.refused.replace(/\|/g, "\\|")} |`);
  }
}
