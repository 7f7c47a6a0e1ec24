import { afterAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { builtinMixture } from "../lib/models/builtin_models.ts";
import { main } from "../lib/cli.ts";
import { decodeImage, loadImageTensor, savePng } from "../lib/io/image.ts";
import { imageError } from "../lib/pipelines/inversion.ts";
import { drawShapes } from "../lib/models/shapes_dataset.ts";
import { quietProgress } from "../lib/io/progress.ts";
import { Tensor } from "../lib/core/tensor.ts";
import { TorchGenerator } from "../lib/core/torch_generator.ts";

const folder = mkdtempSync(join(tmpdir(), "ddimlab-cli-"));
afterAll(() => rmSync(folder, { recursive: true, force: true }));

async function cli(...argv: string[]): Promise<{ status: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const status = await main(argv, { log: (l) => out.push(l), error: (l) => err.push(l), progress: quietProgress() });
  return { status, out: out.join("\n"), err: err.join("\n") };
}

async function pngSize(path: string): Promise<[number, number]> {
  const image = await decodeImage(new Uint8Array(readFileSync(path)));
  return [image.width, image.height];
}

async function modelImage(name: string, seed: number): Promise<string> {
  const draw = builtinMixture("shapes32").sample(1, new TorchGenerator(seed)).samples.reshape([1, 3, 32, 32]);
  const path = join(folder, name);
  await savePng(draw, path);
  return path;
}

describe("ddimlab commands", () => {
  test("--version, -v and version print package.json's version", async () => {
    const { version } = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
    for (const flag of ["--version", "-v", "version"]) {
      const { status, out } = await cli(flag);
      expect(status).toBe(0);
      expect(out).toBe(`ddimlab ${version}`);
    }
  });

  test("help prints the commands and options", async () => {
    const { status, out } = await cli("help");
    expect(status).toBe(0);
    for (
      const word of ["sample", "invert", "reconstruct", "interpolate", "fuse", "grid", "demo", "--model", "--quiet"]
    ) {
      expect(out).toContain(word);
    }
  });

  test("sample writes the batch as one PNG row, with DDIM or DDPM", async () => {
    const path = join(folder, "sample.png");
    const ddim = await cli("sample", "--steps", "5", "--eta", "0.5", "--batch", "2", "--seed", "1", "--out", path);
    expect(ddim.status).toBe(0);
    expect(ddim.out).toContain("DDIM eta 0.5, 5 steps: 2 samples from seed 1");
    expect(await pngSize(path)).toEqual([32 * 2 + 2, 32]);
    const ddpmPath = join(folder, "ddpm.png");
    const ddpm = await cli("sample", "--scheduler", "ddpm", "--steps", "20", "--batch", "1", "--out", ddpmPath);
    expect(ddpm.status).toBe(0);
    expect(await pngSize(ddpmPath)).toEqual([32, 32]);
  });

  test("invert writes latents that sample --latents decodes; reconstruct prints MSE and PSNR", async () => {
    const image = await modelImage("draw.png", 4);
    const latents = join(folder, "latents.json");
    expect((await cli("invert", image, "--steps", "20", "--out", latents)).status).toBe(0);
    const saved = JSON.parse(readFileSync(latents, "utf8"));
    expect(saved.shape).toEqual([1, 3, 32, 32]);
    const decoded = join(folder, "decoded.png");
    expect((await cli("sample", "--latents", latents, "--steps", "20", "--out", decoded)).status).toBe(0);
    expect(await pngSize(decoded)).toEqual([32, 32]);
    const compare = join(folder, "reconstruction.png");
    const result = await cli("reconstruct", image, "--steps", "20", "--out", compare);
    expect(result.status).toBe(0);
    expect(result.out).toMatch(/MSE on \[0, 1\] \d\.\d+e-\d+, PSNR \d+\.\d\d dB/);
    expect(existsSync(compare)).toBe(true);
  }, 60_000);

  test("interpolate, fuse and grid write their figures", async () => {
    const row = join(folder, "row.png");
    expect((await cli("interpolate", "--count", "3", "--steps", "5", "--out", row)).status).toBe(0);
    const [width] = await pngSize(row);
    expect(width).toBeGreaterThan(3 * 128);
    const fused = join(folder, "fused.png");
    const a = await modelImage("a.png", 1);
    const b = await modelImage("b.png", 2);
    expect((await cli("fuse", a, b, "--alpha", "0.3", "--steps", "10", "--out", fused)).status).toBe(0);
    expect(existsSync(fused)).toBe(true);
    const grid = join(folder, "grid.png");
    const result = await cli("grid", "--eta", "0,1", "--steps", "2,4", "--out", grid);
    expect(result.status).toBe(0);
    expect(result.out).toContain("2 x 2 runs");
  }, 60_000);

  test("demo writes every figure into one folder and says what it did", async () => {
    const demo = join(folder, "demo");
    const { status, out } = await cli("demo", "--out", demo);
    expect(status).toBe(0);
    expect(readdirSync(demo).sort()).toEqual([
      "ddpm_vs_ddim.png",
      "eta_steps_grid.png",
      "interpolation.png",
      "inversion.png",
      "learned_ddpm_vs_ddim.png",
      "learned_eta_steps_grid.png",
      "trajectories_ring2d.png",
      "trajectory_pixels.png",
    ]);
    expect(out).toContain("the trained network builtin:ddpm-shapes32");
    expect(out).toContain("DDIM eta 0, 10 steps, same seed");
    expect(out).toContain("DDPM, 1000 steps");
    expect(out).toContain("all three started from the same x_T: yes");
  }, 300_000);
});

describe("bad arguments are refused with a clear message and nothing is written", () => {
  const cases: [string, string[], RegExp][] = [
    ["eta < 0", ["sample", "--eta", "-1"], /--eta must be a number from 0 to 1.*got -1/],
    ["zero steps", ["sample", "--steps", "0"], /--steps must be an integer from 1 to the model's 1000 .*got 0/],
    ["too many steps", ["sample", "--steps", "5000"], /got 5000/],
    ["a word for steps", ["sample", "--steps", "many"], /--steps must be a number.*got "many"/],
    [
      "steps in hexadecimal",
      ["sample", "--steps", "0x10"],
      /--steps must be a number or a comma-separated list of numbers, got "0x10"/,
    ],
    [
      "steps with an exponent",
      ["sample", "--steps", "1e1"],
      /--steps must be an integer or a comma-separated list of integers, got "1e1"/,
    ],
    ["a seed with an exponent", ["sample", "--seed", "1e3"], /--seed must be an integer from 0 to \d+, got "1e3"/],
    ["a huge eta", ["sample", "--eta", "1e308"], /--eta must be a number from 0 to 1.*got 1e\+308/],
    ["an eta above 1", ["sample", "--eta", "1.5"], /--eta must be a number from 0 to 1.*got 1\.5/],
    ["an unknown scheduler", ["sample", "--scheduler", "euler"], /--scheduler must be "ddim" or "ddpm", got "euler"/],
    ["an unknown command", ["paint"], /Unknown command "paint"/],
    ["an unknown option", ["sample", "--colour", "red"], /--colour/],
    ["a non-PNG output", ["sample", "--out", "OUT/x.jpg"], /--out must name a \.png file, got ".*x\.jpg"/],
    ["alpha outside [0, 1]", ["fuse", "a.png", "b.png", "--alpha", "2"], /--alpha must be one number in \[0, 1\]/],
    ["fuse with one image", ["fuse", "a.png"], /"fuse" takes 2 file arguments, got 1/],
  ];
  for (const [name, argv, message] of cases) {
    test(`${name}: exit status 2`, async () => {
      const out = join(folder, `refused-${name.replace(/\W+/g, "-")}`);
      const args = argv.map((a) => a.replace("OUT", out));
      const { status, err } = await cli(...args, ...(args.includes("--out") ? [] : ["--out", join(out, "x.png")]));
      expect(status).toBe(2);
      expect(err).toMatch(message);
      expect(existsSync(out)).toBe(false);
    });
  }

  test("an output that cannot be written is refused before any sampling, and nothing is created", async () => {
    const locked = join(folder, "locked");
    mkdirSync(locked);
    chmodSync(locked, 0o500);
    try {
      // as root every folder is writable: then only the folder-as-file case below can be checked
      const root = process.getuid?.() === 0;
      if (!root) {
        const refused = await cli("sample", "--steps", "50", "--out", join(locked, "deeper", "x.png"));
        expect(refused.status).toBe(2);
        expect(refused.err).toContain(`${locked} is not writable`);
      }
      const asFolder = join(folder, "a-folder.png");
      mkdirSync(asFolder);
      const folderRefused = await cli("sample", "--steps", "50", "--out", asFolder);
      expect(folderRefused.status).toBe(2);
      expect(folderRefused.err).toContain(`--out ${asFolder} is a folder, not a file`);
      const file = join(folder, "plain-file");
      writeFileSync(file, "");
      const underFile = await cli("sample", "--steps", "50", "--out", join(file, "x.png"));
      expect(underFile.status).toBe(2);
      expect(underFile.err).toContain(`cannot be created: ${file} is not a folder`);
    } finally {
      chmodSync(locked, 0o700);
    }
  });

  test("an image that cannot be decoded, or is missing, fails with status 1 and writes nothing", async () => {
    const bad = join(folder, "not-an-image.png");
    writeFileSync(bad, "these bytes are not a PNG");
    const out = join(folder, "never", "r.png");
    const broken = await cli("reconstruct", bad, "--steps", "5", "--out", out);
    expect(broken.status).toBe(1);
    expect(broken.err).toMatch(/Cannot decode image file .*not-an-image\.png/);
    // a PNG cut short used to decode to a black picture and exit 0
    const whole = join(folder, "whole.png");
    await savePng(Tensor.zeros([1, 3, 32, 32]), whole);
    const cut = join(folder, "cut.png");
    writeFileSync(cut, readFileSync(whole).subarray(0, readFileSync(whole).length - 20));
    const truncated = await cli("reconstruct", cut, "--steps", "5", "--out", out);
    expect(truncated.status).toBe(1);
    expect(truncated.err).toMatch(/Cannot decode image file .*cut\.png: the PNG file is truncated/);
    const missing = await cli("fuse", join(folder, "missing.png"), bad, "--out", out);
    expect(missing.status).toBe(1);
    expect(missing.err).toMatch(/missing\.png/);
    expect(existsSync(join(folder, "never"))).toBe(false);
  });

  test("invert --method edict and bdia write the state; sample --latents decodes it back to the image", async () => {
    const image = join(folder, "data.png");
    await savePng(drawShapes(1, { seed: 8 }).images, image);
    const original = await loadImageTensor(image, { size: 32, channels: 3 });
    for (const [method, extra] of [["edict", ["--p", "0.9"]], ["bdia", ["--gamma", "1"]]] as const) {
      const latents = join(folder, `${method}.json`);
      const run = await cli("invert", image, "--method", method, ...extra, "--steps", "10", "--out", latents);
      expect(run.status).toBe(0);
      const saved = JSON.parse(readFileSync(latents, "utf8"));
      expect([saved.method, saved.numInferenceSteps, saved.state.length]).toEqual([method, 10, 2]);
      const decoded = join(folder, `${method}-decoded.png`);
      const sample = await cli("sample", "--latents", latents, "--out", decoded);
      expect(sample.status).toBe(0);
      // the decode is written as 8-bit PNG: it comes back to within one grey level of the original's pixels
      const back = await loadImageTensor(decoded, { size: 32, channels: 3 });
      expect(imageError(back, original).mse).toBeLessThan(1e-4);
      const mixed = await cli(
        "sample",
        "--latents",
        latents,
        "--method",
        "ddim",
        "--out",
        join(folder, "never3", "x.png"),
      );
      expect(mixed.status).toBe(2);
      expect(mixed.err).toContain(`were made with --method ${method} and decode only with it, got --method ddim`);
      const steps = await cli(
        "sample",
        "--latents",
        latents,
        "--steps",
        "20",
        "--out",
        join(folder, "never3", "x.png"),
      );
      expect(steps.status).toBe(2);
      expect(steps.err).toContain("were made with 10 steps and decode on that schedule, got --steps 20");
    }
    const result = await cli("reconstruct", image, "--method", "bdia", "--steps", "10", "--out", join(folder, "r.png"));
    expect(result.status).toBe(0);
    expect(result.out).toMatch(/^bdia inversion and reconstruction in 10 steps/);
    expect(existsSync(join(folder, "never3"))).toBe(false);
  }, 60_000);

  test("a bad --method, --p or --gamma exits 2 naming the value", async () => {
    const image = await modelImage("m.png", 3);
    const out = join(folder, "never4", "x.json");
    const cases: [string[], string][] = [
      [["--method", "dpm"], `--method must be "ddim", "edict" or "bdia", got "dpm"`],
      [["--method", "edict", "--p", "1"], `--p must be in (0, 1) (EDICT uses 0.93), got "1"`],
      [["--p", "0.9"], "--p is EDICT's mixing weight and needs --method edict, got --method ddim"],
      [["--method", "bdia", "--gamma", "0"], "--gamma must be in (0, 1] for inversion (gamma = 0 is DDIM"],
      [["--method", "bdia", "--gamma", "1.5"], `got "1.5"`],
      [["--method", "edict", "--gamma", "0.5"], "--gamma is BDIA's parameter and needs --method bdia"],
    ];
    for (const [options, message] of cases) {
      const { status, err } = await cli("invert", image, ...options, "--out", out);
      expect(status).toBe(2);
      expect(err).toContain(message);
    }
    expect(existsSync(join(folder, "never4"))).toBe(false);
  });

  test("latents of the wrong shape are refused", async () => {
    const path = join(folder, "small-latents.json");
    writeFileSync(path, JSON.stringify({ shape: [1, 3, 8, 8], data: Array.from(Tensor.zeros([1, 3, 8, 8]).data) }));
    const { status, err } = await cli("sample", "--latents", path, "--out", join(folder, "never2", "x.png"));
    expect(status).toBe(2);
    expect(err).toMatch(/have shape \[1, 3, 8, 8\] but the model takes \[1, 3, 32, 32\]/);
  });
});

describe("the entry point runs under Bun and Deno", () => {
  const root = new URL("..", import.meta.url).pathname;
  test("bun lib/cli.ts models lists the embedded models", () => {
    const run = spawnSync(process.execPath, ["lib/cli.ts", "models"], { cwd: root, encoding: "utf8" });
    expect(run.status).toBe(0);
    expect(run.stdout).toContain("builtin:shapes32");
  }, 60_000);

  test("deno run -A lib/cli.ts with a bad eta exits 2 with the message", () => {
    const deno = join(root, "node_modules", ".bin", "deno");
    const run = spawnSync(deno, ["run", "-A", "lib/cli.ts", "sample", "--eta", "-2"], { cwd: root, encoding: "utf8" });
    expect(run.status).toBe(2);
    expect(run.stderr).toContain("--eta must be a number from 0 to 1");
  }, 60_000);
});
