#!/usr/bin/env bun
/**
 * The `ddimlab` command line: sample, invert, reconstruct, interpolate, fuse, the eta x steps grid, and the demo,
 * on any model (a checkpoint folder, an `.onnx` file, or an embedded `builtin:NAME`). Run it with
 * `bun lib/cli.ts COMMAND ...` or `deno run -A lib/cli.ts COMMAND ...`; `ddimlab help` lists everything.
 *
 * | command       | what it runs                                                        | writes               |
 * |---------------|---------------------------------------------------------------------|----------------------|
 * | `sample`      | DDIM (eta, S steps) or DDPM from a seed                             | a PNG of the batch   |
 * | `invert`      | inversion x_0 -> x_T of an image (DDIM, EDICT or BDIA: `--method`)  | the latents as JSON  |
 * | `reconstruct` | inversion then decoding, with MSE on [0, 1] and PSNR                | original vs decode   |
 * | `interpolate` | slerp between two seeds' x_T, decoded with eta = 0                  | the row as a PNG     |
 * | `fuse`        | invert two images, slerp their latents, decode                      | the fusion as a PNG  |
 * | `grid`        | the same x_T sampled for every eta and step count                   | the grid as a PNG    |
 * | `demo`        | the learned model's few-step samples and eta x steps grid, then all  | a folder of PNGs     |
 * |               | of the above on the default exact model, with plots                 |                      |
 *
 * Every argument is checked before any model runs, and every file is written whole through a rename, so a bad
 * argument or a failure leaves nothing half-written.
 *
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { readFile } from "node:fs/promises";
import { accessSync, constants, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { builtinMixture, listBuiltinModels } from "./models/builtin_models.ts";
import { DDIMPipeline } from "./pipelines/ddim_pipeline.ts";
import { DDPMPipeline } from "./pipelines/ddpm_pipeline.ts";
import { fuse } from "./pipelines/fuse.ts";
import { compareImages, encodePng, imageGrid, loadImageTensor, type Picture, writeFileAtomic } from "./io/image.ts";
import { interpolationRow } from "./pipelines/interpolation.ts";
import {
  decodeLatents,
  INVERSION_METHODS,
  type InversionMethod,
  invert,
  type LatentState,
  type MethodOptions,
  reconstruct,
} from "./pipelines/inversion.ts";
import { plotPixelTraces, plotTrajectories2D, svgToPng } from "./io/plot.ts";
import { createProgress, type ProgressReporter } from "./io/progress.ts";
import { checkEta, checkInferenceSteps, latentShape, loadPipelineParts } from "./pipelines/sampling.ts";
import { drawShapes } from "./models/shapes_dataset.ts";
import { Tensor } from "./core/tensor.ts";
import { TorchGenerator } from "./core/torch_generator.ts";
import { VERSION } from "./version.ts";

/**
 * The model every command uses unless `--model` says otherwise.
 *
 * @example
 * ```ts
 * import { DEFAULT_MODEL } from "./cli.ts";
 * import { listBuiltinModels } from "../mod.ts";
 * if (!listBuiltinModels().some(({ name }) => `builtin:${name}` === DEFAULT_MODEL)) throw new Error("not a builtin");
 * ```
 */
export const DEFAULT_MODEL = "builtin:shapes32";

/**
 * The trained image model the demo starts with: what DDIM buys on a real network.
 *
 * @example
 * ```ts
 * import { LEARNED_MODEL } from "./cli.ts";
 * import { builtinCheckpointDir } from "../mod.ts";
 * if (builtinCheckpointDir(LEARNED_MODEL) === undefined) throw new Error("the demo's model is not a trained checkpoint");
 * ```
 */
export const LEARNED_MODEL = "builtin:ddpm-shapes32";

/** Where the command line prints: standard output and error, or stand-ins in tests. */
export interface CliIO {
  /** A line of normal output. */
  log(line: string): void;
  /** A line of error output. */
  error(line: string): void;
  /** The progress reporter long runs report to (default: a bar on standard error unless `--quiet`). */
  progress?: ProgressReporter;
}

/**
 * A mistake in the command line's arguments (exit status 2).
 *
 * @example
 * ```ts
 * import { main } from "./cli.ts";
 * const errors: string[] = [];
 * const status = await main(["sample", "--steps", "zero"], { log() {}, error: (line) => errors.push(line) });
 * if (status !== 2 || !errors.join("\n").includes("zero")) throw new Error(`status ${status}: ${errors.join("\n")}`);
 * ```
 */
export class UsageError extends Error {
  /** @param message what is wrong, naming the argument and its value */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

const USAGE = `ddimlab: DDIM and DDPM sampling, inversion, interpolation and fusion

Usage: ddimlab COMMAND [options]   (installed: bunx ddimlab ...; in a checkout: bun lib/cli.ts ...)

Commands:
  sample                 sample a batch (DDIM by default; --scheduler ddpm for ancestral DDPM)
  invert IMAGE           invert an image to its latents x_T (written as JSON with the state that decodes them)
  reconstruct IMAGE      invert and decode an image; prints MSE on [0, 1] and PSNR
  interpolate            slerp between the x_T of --seed and --seed2, decoded with eta = 0
  fuse IMAGE_A IMAGE_B   invert both images, slerp their latents at --alpha, decode
  grid                   one x_T sampled for every --eta and --steps value (comma lists)
  demo                   DDPM vs DDIM, the eta x steps grid, inversion and interpolation, in one folder
  models                 list the embedded models

Options:
  --model PATH|builtin:NAME   checkpoint folder, .onnx file or embedded model (default ${DEFAULT_MODEL})
  --scheduler ddim|ddpm       sampler for "sample" (default ddim)
  --steps N                   inference steps (default 50; DDPM 1000; grid: a list such as 10,20,50)
  --eta E                     DDIM eta from 0 to 1 (default 0; grid: a list such as 0,0.5,1)
  --seed N                    generator seed (default 0); --seed2 N for the second end of "interpolate"
  --batch N                   samples per run (default 4 for sample, 1 for grid)
  --count N                   images in an interpolation row (default 8)
  --alpha A                   fusion position in [0, 1] (default 0.5)
  --method ddim|edict|bdia    inversion for invert, reconstruct and fuse (default ddim; edict and bdia are exact)
  --p P                       EDICT's mixing weight in (0, 1) (default 0.93; --method edict only)
  --gamma G                   BDIA's gamma in (0, 1] (default 1; --method bdia only)
  --latents FILE.json         start "sample" from latents written by "invert" (decoded with their method)
  --out PATH                  output file (or folder for demo; default under out/)
  --quiet                     no progress bars
  -h, --help                  this text
  -v, --version               the version of ddimlab`;

/**
 * Run the command line with the given arguments and return the exit status (0 done, 1 failed, 2 bad arguments).
 *
 * @param argv the arguments after the program name
 * @param io where to print (default the console)
 * @returns the exit status
 * @example
 * ```ts
 * import { main } from "./cli.ts";
 * import { existsSync, mkdtempSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * const out = join(mkdtempSync(join(tmpdir(), "ddimlab-")), "sample.png");
 * const status = await main(["sample", "--steps", "5", "--batch", "1", "--out", out, "--quiet"]);
 * if (status !== 0 || !existsSync(out)) throw new Error(`sample ended with status ${status}`);
 * ```
 */
export async function main(argv: readonly string[], io: CliIO = consoleIO()): Promise<number> {
  try {
    await run(argv, io);
    return 0;
  } catch (error) {
    if (error instanceof UsageError) {
      io.error(`ddimlab: ${error.message}`);
      io.error(`Run "ddimlab help" for the commands and options.`);
      return 2;
    }
    io.error(`ddimlab: ${(error as Error)?.message ?? String(error)}`);
    return 1;
  }
}

interface ParsedArgs {
  command: string;
  positionals: string[];
  values: Record<string, string | boolean | undefined>;
}

function parse(argv: readonly string[]): ParsedArgs {
  // "--eta -1" should reach the eta check, not be read as an option "-1": join a negative number to its option
  const args: string[] = [];
  for (let k = 0; k < argv.length; k++) {
    if (/^--[a-z0-9]+$/.test(argv[k]) && k + 1 < argv.length && /^-\d/.test(argv[k + 1])) {
      args.push(`${argv[k]}=${argv[k + 1]}`);
      k++;
    } else args.push(argv[k]);
  }
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        model: { type: "string" },
        scheduler: { type: "string" },
        steps: { type: "string" },
        eta: { type: "string" },
        seed: { type: "string" },
        seed2: { type: "string" },
        batch: { type: "string" },
        count: { type: "string" },
        alpha: { type: "string" },
        latents: { type: "string" },
        method: { type: "string" },
        p: { type: "string" },
        gamma: { type: "string" },
        out: { type: "string" },
        quiet: { type: "boolean" },
        help: { type: "boolean", short: "h" },
        version: { type: "boolean", short: "v" },
      },
    });
  } catch (error) {
    throw new UsageError((error as Error).message.replace(/\s+To specify.*$/s, ""));
  }
  const [command = "help", ...positionals] = parsed.positionals;
  return { command, positionals, values: parsed.values as ParsedArgs["values"] };
}

async function run(argv: readonly string[], io: CliIO): Promise<void> {
  const args = parse(argv);
  if (args.values.version || args.command === "version") {
    io.log(`ddimlab ${VERSION}`);
    return;
  }
  if (args.values.help || args.command === "help") {
    io.log(USAGE);
    return;
  }
  const progress = io.progress ?? createProgress({ quiet: args.values.quiet === true });
  const commands: Record<string, (args: ParsedArgs, io: CliIO, progress: ProgressReporter) => Promise<void>> = {
    sample: sampleCommand,
    invert: invertCommand,
    reconstruct: reconstructCommand,
    interpolate: interpolateCommand,
    fuse: fuseCommand,
    grid: gridCommand,
    demo: demoCommand,
    models: modelsCommand,
  };
  const command = commands[args.command];
  if (!command) throw new UsageError(`Unknown command "${args.command}"`);
  await command(args, io, progress);
}

// ---- argument readers: each names the option and the value it refuses

function stringOption(args: ParsedArgs, name: string, fallback: string): string {
  const value = args.values[name];
  return typeof value === "string" ? value : fallback;
}

/** Plain decimal integers only: `Number` would also take "0x10", "1e1", "0b11" and " 7 ". */
const INTEGER = /^[+-]?\d+$/;
/** Plain decimal numbers, with an optional exponent. */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function integerOption(args: ParsedArgs, name: string, fallback: number, min: number, max = Infinity): number {
  const raw = args.values[name];
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (typeof raw !== "string" || !INTEGER.test(raw) || !Number.isSafeInteger(value) || value < min || value > max) {
    const range = max === Infinity ? `>= ${min}` : `from ${min} to ${max}`;
    throw new UsageError(`--${name} must be an integer ${range}, got "${raw}"`);
  }
  return value;
}

function numberList(args: ParsedArgs, name: string, fallback: number[]): number[] {
  const raw = args.values[name];
  if (raw === undefined) return fallback;
  const values = String(raw).split(",").map((part) => part.trim());
  const numbers = values.map(Number);
  if (values.some((part) => !DECIMAL.test(part)) || numbers.some((n) => !Number.isFinite(n))) {
    throw new UsageError(`--${name} must be a number or a comma-separated list of numbers, got "${raw}"`);
  }
  return numbers;
}

function stepsOption(args: ParsedArgs, fallback: number, total: number): number {
  const [steps, ...rest] = parseStepsList(args, [fallback]);
  if (rest.length > 0) throw new UsageError(`--steps takes one number here, got "${args.values.steps}"`);
  return checkedSteps(steps, total);
}

/** --steps as a list of plain decimal integers ("1e1" and "0x10" are refused, though `Number` reads them as 10 and 16). */
function parseStepsList(args: ParsedArgs, fallback: number[]): number[] {
  const raw = args.values.steps;
  const list = numberList(args, "steps", fallback);
  if (raw !== undefined && String(raw).split(",").some((part) => !INTEGER.test(part.trim()))) {
    throw new UsageError(`--steps must be an integer or a comma-separated list of integers, got "${raw}"`);
  }
  return list;
}

function checkedSteps(steps: number, total: number): number {
  if (!Number.isInteger(steps) || steps < 1 || steps > total) {
    throw new UsageError(`--steps must be an integer from 1 to the model's ${total} training timesteps, got ${steps}`);
  }
  return steps;
}

function etaOption(args: ParsedArgs): number {
  const [eta, ...rest] = numberList(args, "eta", [0]);
  if (rest.length > 0) throw new UsageError(`--eta takes one number here, got "${args.values.eta}"`);
  return checkedEta(eta);
}

function checkedEta(eta: number): number {
  try {
    checkEta(eta);
  } catch (error) {
    throw new UsageError(`--${(error as Error).message}`);
  }
  return eta;
}

function alphaOption(args: ParsedArgs): number {
  const [alpha, ...rest] = numberList(args, "alpha", [0.5]);
  if (rest.length > 0 || !(alpha >= 0 && alpha <= 1)) {
    throw new UsageError(`--alpha must be one number in [0, 1], got "${args.values.alpha}"`);
  }
  return alpha;
}

/** --method, --p and --gamma, checked: p only with edict, gamma only with bdia, each in range. */
function methodOptions(args: ParsedArgs): MethodOptions & { method: InversionMethod } {
  const method = stringOption(args, "method", "ddim") as InversionMethod;
  if (!INVERSION_METHODS.includes(method)) {
    throw new UsageError(`--method must be "ddim", "edict" or "bdia", got "${method}"`);
  }
  const single = (name: "p" | "gamma") => {
    const [value, ...rest] = numberList(args, name, [NaN]);
    if (rest.length > 0) throw new UsageError(`--${name} takes one number, got "${args.values[name]}"`);
    return value;
  };
  const options: MethodOptions & { method: InversionMethod } = { method };
  if (args.values.p !== undefined) {
    if (method !== "edict") {
      throw new UsageError(`--p is EDICT's mixing weight and needs --method edict, got --method ${method}`);
    }
    const p = single("p");
    if (!(p > 0 && p < 1)) throw new UsageError(`--p must be in (0, 1) (EDICT uses 0.93), got "${args.values.p}"`);
    options.p = p;
  }
  if (args.values.gamma !== undefined) {
    if (method !== "bdia") {
      throw new UsageError(`--gamma is BDIA's parameter and needs --method bdia, got --method ${method}`);
    }
    const gamma = single("gamma");
    if (!(gamma > 0 && gamma <= 1)) {
      throw new UsageError(
        `--gamma must be in (0, 1] for inversion (gamma = 0 is DDIM, whose inversion is not exact), got "${args.values.gamma}"`,
      );
    }
    options.gamma = gamma;
  }
  return options;
}

function outOption(args: ParsedArgs, fallback: string, extension: string): string {
  const out = stringOption(args, "out", fallback);
  if (!out.toLowerCase().endsWith(extension)) throw new UsageError(`--out must name a ${extension} file, got "${out}"`);
  checkWritable(out, "file");
  return out;
}

/**
 * Refuse an output that cannot be written, before any sampling: the path is an existing folder (for a file) or file
 * (for a folder), or the nearest folder that exists on the way to it is not writable. Nothing is created here.
 */
function checkWritable(path: string, kind: "file" | "folder"): void {
  const stat = (p: string) => {
    try {
      return statSync(p);
    } catch {
      return undefined;
    }
  };
  const target = stat(path);
  if (target !== undefined && kind === "file" && target.isDirectory()) {
    throw new UsageError(`--out ${path} is a folder, not a file`);
  }
  if (target !== undefined && kind === "folder" && !target.isDirectory()) {
    throw new UsageError(`--out ${path} is a file, not a folder`);
  }
  let folder = resolve(kind === "folder" && target !== undefined ? path : dirname(path));
  while (stat(folder) === undefined && dirname(folder) !== folder) folder = dirname(folder);
  if (!stat(folder)?.isDirectory()) throw new UsageError(`--out ${path} cannot be created: ${folder} is not a folder`);
  try {
    accessSync(folder, constants.W_OK);
    if (target !== undefined && kind === "file") accessSync(path, constants.W_OK);
  } catch {
    throw new UsageError(
      `--out ${path} cannot be written: ${target !== undefined && kind === "file" ? path : folder} is not writable`,
    );
  }
}

function noPositionals(args: ParsedArgs, count = 0): void {
  if (args.positionals.length !== count) {
    const expected = count === 0 ? "no file arguments" : `${count} file argument${count > 1 ? "s" : ""}`;
    throw new UsageError(
      `"${args.command}" takes ${expected}, got ${args.positionals.length}: ${args.positionals.join(" ") || "none"}`,
    );
  }
}

async function loadPipeline(args: ParsedArgs): Promise<DDIMPipeline> {
  const model = stringOption(args, "model", DEFAULT_MODEL);
  return await DDIMPipeline.fromPretrained(model);
}

function trainSteps(pipe: { scheduler: { config: object } }): number {
  const config = pipe.scheduler.config as Record<string, unknown>;
  return Number(config.num_train_timesteps ?? 1000);
}

function modelSide(pipe: DDIMPipeline): number | [number, number] {
  const [, , height, width] = latentShape(pipe.unet, 1);
  return height === width ? height : [height, width];
}

async function readImageArgument(path: string, pipe: DDIMPipeline): Promise<Tensor> {
  const channels = pipe.unet.inChannels;
  if (channels !== 1 && channels !== 3) {
    throw new UsageError(`The model takes ${channels}-channel inputs, which are not images; images need 1 or 3`);
  }
  return await loadImageTensor(path, { size: modelSide(pipe), channels });
}

async function writeOutputs(files: readonly { path: string; bytes: Uint8Array | string }[], io: CliIO): Promise<void> {
  for (const { path, bytes } of files) {
    await writeFileAtomic(path, bytes);
    io.log(`wrote ${path}`);
  }
}

function seconds(start: number): string {
  return `${((performance.now() - start) / 1000).toFixed(1)} s`;
}

// ---- commands

async function sampleCommand(args: ParsedArgs, io: CliIO, progress: ProgressReporter): Promise<void> {
  noPositionals(args);
  const scheduler = stringOption(args, "scheduler", "ddim");
  if (scheduler !== "ddim" && scheduler !== "ddpm") {
    throw new UsageError(`--scheduler must be "ddim" or "ddpm", got "${scheduler}"`);
  }
  if (scheduler === "ddpm" && args.values.eta !== undefined) {
    throw new UsageError(`--eta applies to the DDIM scheduler only; DDPM's variance is fixed by its config`);
  }
  const eta = etaOption(args);
  const seed = integerOption(args, "seed", 0, 0, Number.MAX_SAFE_INTEGER);
  const out = outOption(args, "out/sample.png", ".png");
  const latentsPath = args.values.latents === undefined ? undefined : stringOption(args, "latents", "");
  const model = stringOption(args, "model", DEFAULT_MODEL);
  const pipe = scheduler === "ddpm"
    ? await DDPMPipeline.fromPretrained(model)
    : await DDIMPipeline.fromPretrained(model);
  const steps = stepsOption(args, scheduler === "ddpm" ? trainSteps(pipe) : 50, trainSteps(pipe));
  const saved = latentsPath === undefined ? undefined : await readLatents(latentsPath, pipe.unet);
  if (args.values.method !== undefined && saved === undefined) {
    throw new UsageError(`--method applies to "sample" only with --latents (the method that made them)`);
  }
  if (saved && args.values.method !== undefined && args.values.method !== saved.method) {
    throw new UsageError(
      `The latents in ${latentsPath} were made with --method ${saved.method} and decode only with it, got --method ${args.values.method}`,
    );
  }
  const exact = saved !== undefined && saved.method !== "ddim";
  if (exact && scheduler === "ddpm") {
    throw new UsageError(`${saved.method} latents decode with their own sampler, not DDPM`);
  }
  if (exact && (args.values.eta !== undefined && eta !== 0)) {
    throw new UsageError(`${saved.method} latents decode deterministically; --eta must be 0, got ${eta}`);
  }
  if (exact && args.values.steps !== undefined && steps !== saved.numInferenceSteps) {
    throw new UsageError(
      `The ${saved.method} latents in ${latentsPath} were made with ${saved.numInferenceSteps} steps and decode on that ` +
        `schedule, got --steps ${steps}`,
    );
  }
  const xT = saved === undefined ? undefined : new Tensor(Float32Array.from(saved.state[0]), saved.shape);
  const batchSize = integerOption(args, "batch", xT?.shape[0] ?? 4, 1, 256);
  if (xT && xT.shape[0] !== batchSize) {
    throw new UsageError(`--batch ${batchSize} disagrees with the ${xT.shape[0]} latents in ${latentsPath}`);
  }
  const start = performance.now();
  if (exact) {
    const { samples } = await decodeLatents(pipe as DDIMPipeline, saved, { progress });
    io.log(
      `${saved.method} decoding of ${latentsPath}, ${saved.numInferenceSteps} steps with ${model} in ${seconds(start)}`,
    );
    await writeOutputs([{ path: out, bytes: encodePng(samples) }], io);
    return;
  }
  const { samples } = pipe instanceof DDIMPipeline
    ? await pipe.sample({ numInferenceSteps: steps, eta, seed, batchSize, xT, progress })
    : await pipe.sample({ numInferenceSteps: steps, seed, batchSize, xT, progress });
  const label = scheduler === "ddpm" ? `DDPM ${steps} steps` : `DDIM eta ${eta}, ${steps} steps`;
  io.log(`${label}: ${batchSize} samples from seed ${seed} with ${model} in ${seconds(start)}`);
  await writeOutputs([{ path: out, bytes: encodePng(samples) }], io);
}

async function readLatents(path: string, model: DDIMPipeline["unet"]): Promise<LatentState> {
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(await readFile(path, "utf8"));
  } catch (error) {
    throw new UsageError(`Cannot read latents from ${path}: ${(error as Error).message}`);
  }
  const { shape, data } = parsed;
  const isNumbers = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === "number");
  if (!Array.isArray(shape) || !isNumbers(data)) {
    throw new UsageError(`${path} does not hold latents ({ "shape": [...], "data": [...] } as "invert" writes)`);
  }
  let latents: Tensor;
  try {
    latents = new Tensor(Float32Array.from(data as number[]), shape as number[]);
  } catch (error) {
    throw new UsageError(`${path}: ${(error as Error).message}`);
  }
  const expected = latentShape(model, latents.shape[0] ?? 1);
  if (latents.shape.length !== 4 || !latents.shape.every((d, k) => d === expected[k])) {
    throw new UsageError(
      `The latents in ${path} have shape [${latents.shape.join(", ")}] but the model takes ` +
        `[${expected.join(", ")}]`,
    );
  }
  const method = (parsed.method ?? "ddim") as InversionMethod;
  if (!INVERSION_METHODS.includes(method)) {
    throw new UsageError(`${path} names an unknown method ${JSON.stringify(parsed.method)}`);
  }
  const numInferenceSteps = Number(parsed.numInferenceSteps ?? 50);
  if (method === "ddim") {
    return { method, numInferenceSteps, clipSample: false, state: [latents.data], shape: latents.shape.slice() };
  }
  const state = parsed.state;
  const arrays = 2; // EDICT: (x_T, y_T); BDIA: (z_S, z_{S-1})
  if (
    !Array.isArray(state) || state.length !== arrays || !state.every((a) => isNumbers(a) && a.length === latents.size)
  ) {
    throw new UsageError(
      `${path} holds ${method} latents without their state (${arrays} arrays of ${latents.size} numbers)`,
    );
  }
  return {
    method,
    numInferenceSteps,
    clipSample: false,
    ...(method === "edict" ? { p: Number(parsed.p) } : { gamma: Number(parsed.gamma) }),
    state: state.map((a) => Float32Array.from(a as number[])),
    shape: latents.shape.slice(),
  };
}

async function invertCommand(args: ParsedArgs, io: CliIO, progress: ProgressReporter): Promise<void> {
  noPositionals(args, 1);
  const out = outOption(args, "out/latents.json", ".json");
  const methodOptionsGiven = methodOptions(args);
  const pipe = await loadPipeline(args);
  const steps = stepsOption(args, 50, trainSteps(pipe));
  const image = await readImageArgument(args.positionals[0], pipe);
  const start = performance.now();
  const inversion = await invert(pipe, image, { ...methodOptionsGiven, numInferenceSteps: steps, progress });
  const { method, latents } = inversion;
  io.log(`${method} inversion of ${args.positionals[0]} in ${steps} steps (${seconds(start)})`);
  const json = JSON.stringify({
    shape: latents.shape,
    data: Array.from(latents.data),
    numInferenceSteps: steps,
    method,
    ...(inversion.p === undefined ? {} : { p: inversion.p }),
    ...(inversion.gamma === undefined ? {} : { gamma: inversion.gamma }),
    ...(method === "ddim" ? {} : { state: inversion.state.map((a) => Array.from(a)) }),
  });
  await writeOutputs([{ path: out, bytes: json }], io);
}

async function reconstructCommand(args: ParsedArgs, io: CliIO, progress: ProgressReporter): Promise<void> {
  noPositionals(args, 1);
  const out = outOption(args, "out/reconstruction.png", ".png");
  const method = methodOptions(args);
  const pipe = await loadPipeline(args);
  const steps = stepsOption(args, 50, trainSteps(pipe));
  const image = await readImageArgument(args.positionals[0], pipe);
  const start = performance.now();
  const result = await reconstruct(pipe, image, { ...method, numInferenceSteps: steps, progress });
  io.log(
    `${method.method} inversion and reconstruction in ${steps} steps each way (${seconds(start)}): ` +
      `MSE on [0, 1] ${result.mse.toExponential(3)}, PSNR ${result.psnr.toFixed(2)} dB`,
  );
  const picture = compareImages([image, result.reconstruction], ["original", `reconstruction, ${steps} steps`]);
  await writeOutputs([{ path: out, bytes: encodePng(picture) }], io);
}

async function interpolateCommand(args: ParsedArgs, io: CliIO, progress: ProgressReporter): Promise<void> {
  noPositionals(args);
  const out = outOption(args, "out/interpolation.png", ".png");
  const seed = integerOption(args, "seed", 0, 0, Number.MAX_SAFE_INTEGER);
  const seed2 = integerOption(args, "seed2", seed + 1, 0, Number.MAX_SAFE_INTEGER);
  const count = integerOption(args, "count", 8, 2, 64);
  const pipe = await loadPipeline(args);
  const steps = stepsOption(args, 50, trainSteps(pipe));
  const shape = latentShape(pipe.unet, 1);
  const latents: [Tensor, Tensor] = [new TorchGenerator(seed).randn(shape), new TorchGenerator(seed2).randn(shape)];
  const start = performance.now();
  const row = await interpolationRow(pipe, latents, { count, numInferenceSteps: steps, progress });
  io.log(
    `slerp between the x_T of seeds ${seed} and ${seed2}: ${count} points decoded with DDIM eta 0, ` +
      `${steps} steps (${seconds(start)})`,
  );
  const picture = compareImages(row.samples.splitBatch(), row.alphas.map((a) => `a=${a.toFixed(2)}`));
  await writeOutputs([{ path: out, bytes: encodePng(picture) }], io);
}

async function fuseCommand(args: ParsedArgs, io: CliIO, progress: ProgressReporter): Promise<void> {
  noPositionals(args, 2);
  const out = outOption(args, "out/fuse.png", ".png");
  const alpha = alphaOption(args);
  const method = methodOptions(args);
  const pipe = await loadPipeline(args);
  const steps = stepsOption(args, 50, trainSteps(pipe));
  const a = await readImageArgument(args.positionals[0], pipe);
  const b = await readImageArgument(args.positionals[1], pipe);
  const start = performance.now();
  const { fused } = await fuse(pipe, [a, b], { ...method, alpha, numInferenceSteps: steps, progress });
  io.log(
    `fused ${args.positionals[0]} and ${args.positionals[1]} at alpha ${alpha} with ${method.method} inversion ` +
      `(${steps} steps, ${seconds(start)})`,
  );
  const picture = compareImages([a, fused, b], ["A", `fused, alpha ${alpha}`, "B"]);
  await writeOutputs([{ path: out, bytes: encodePng(picture) }], io);
}

async function gridCommand(args: ParsedArgs, io: CliIO, progress: ProgressReporter): Promise<void> {
  noPositionals(args);
  const out = outOption(args, "out/grid.png", ".png");
  const seed = integerOption(args, "seed", 0, 0, Number.MAX_SAFE_INTEGER);
  const batchSize = integerOption(args, "batch", 1, 1, 16);
  const etas = numberList(args, "eta", [0, 0.5, 1]).map(checkedEta);
  const pipe = await loadPipeline(args);
  const stepsList = parseStepsList(args, [10, 20, 50, 100]).map((s) => checkedSteps(s, trainSteps(pipe)));
  const start = performance.now();
  const rows = await etaStepsGrid(pipe, { etas, stepsList, seed, batchSize, progress });
  io.log(`eta x steps grid: ${etas.length} x ${stepsList.length} runs from seed ${seed} (${seconds(start)})`);
  const picture = imageGrid(rows, {
    rowTitles: etas.map((eta) => `eta ${eta}`),
    colTitles: stepsList.map((s) => `${s} steps`),
  });
  await writeOutputs([{ path: out, bytes: encodePng(picture) }], io);
}

async function etaStepsGrid(
  pipe: DDIMPipeline,
  options: { etas: number[]; stepsList: number[]; seed: number; batchSize: number; progress: ProgressReporter },
): Promise<Tensor[][]> {
  const rows: Tensor[][] = [];
  for (const eta of options.etas) {
    const row: Tensor[] = [];
    for (const numInferenceSteps of options.stepsList) {
      checkInferenceSteps(numInferenceSteps, pipe.scheduler);
      const { samples } = await pipe.sample({
        numInferenceSteps,
        eta,
        seed: options.seed,
        batchSize: options.batchSize,
        progress: options.progress,
      });
      row.push(samples);
    }
    rows.push(row);
  }
  return rows;
}

function modelsCommand(args: ParsedArgs, io: CliIO): Promise<void> {
  noPositionals(args);
  for (const { name, kind, description } of listBuiltinModels()) io.log(`builtin:${name}  (${kind}) ${description}`);
  return Promise.resolve();
}

// The DDIM paper's Table 2: CIFAR-10 reconstruction error (per-dimension MSE on [0, 1]) for S steps.
const PAPER_TABLE_2: Record<number, number> = { 10: 0.014, 20: 0.0065, 50: 0.0023, 100: 0.0009, 200: 0.0004 };

async function demoCommand(args: ParsedArgs, io: CliIO, progress: ProgressReporter): Promise<void> {
  noPositionals(args);
  const folder = stringOption(args, "out", "out/demo");
  checkWritable(folder, "folder");
  const seed = integerOption(args, "seed", 0, 0, Number.MAX_SAFE_INTEGER);
  const model = stringOption(args, "model", DEFAULT_MODEL);
  const started = performance.now();
  const files: { path: string; bytes: Uint8Array | string }[] = [];
  const add = (name: string, bytes: Uint8Array | string) => files.push({ path: join(folder, name), bytes });

  io.log(`ddimlab demo: model ${model}, seed ${seed}; everything is written to ${folder}/ at the end`);
  const ddim = await DDIMPipeline.fromPretrained(model);
  const channels = ddim.unet.inChannels;
  if (channels !== 1 && channels !== 3) {
    throw new UsageError(
      `The demo draws pictures, so it needs an image model (1 or 3 channels); ${model} has ${channels}`,
    );
  }
  const ddpm = await DDPMPipeline.fromPretrained(model);
  const batchSize = 4;
  if (model === DEFAULT_MODEL) await learnedDemo(seed, io, progress, add);

  // 1. DDPM with 1000 steps against DDIM eta = 1 and eta = 0 with 50 steps, all from the same x_T
  let start = performance.now();
  const ddpmRun = await ddpm.sample({ numInferenceSteps: trainSteps(ddpm), seed, batchSize, progress });
  io.log(`1. DDPM, ${trainSteps(ddpm)} steps, ${batchSize} samples: ${seconds(start)}`);
  start = performance.now();
  const eta1 = await ddim.sample({ numInferenceSteps: 50, eta: 1, seed, batchSize, progress });
  io.log(`   DDIM eta 1, 50 steps, same seed: ${seconds(start)}`);
  start = performance.now();
  const eta0 = await ddim.sample({ numInferenceSteps: 50, eta: 0, seed, batchSize, progress, trajectory: true });
  io.log(`   DDIM eta 0, 50 steps, same seed: ${seconds(start)}`);
  const sameStart = eta0.xT.data.every((v, k) => v === ddpmRun.xT.data[k] && v === eta1.xT.data[k]);
  io.log(`   all three started from the same x_T: ${sameStart ? "yes" : "no"}`);
  add(
    "ddpm_vs_ddim.png",
    encodePng(imageGrid(
      [ddpmRun.samples.splitBatch(), eta1.samples.splitBatch(), eta0.samples.splitBatch()],
      { rowTitles: [`DDPM, ${trainSteps(ddpm)} steps`, "DDIM eta 1, 50 steps", "DDIM eta 0, 50 steps"] },
    )),
  );

  // 2. the eta x steps grid from one x_T
  start = performance.now();
  const etas = [0, 0.5, 1];
  const stepsList = [10, 20, 50, 100];
  const rows = await etaStepsGrid(ddim, { etas, stepsList, seed, batchSize: 1, progress });
  io.log(`2. eta x steps grid, eta ${etas.join(", ")} x steps ${stepsList.join(", ")}: ${seconds(start)}`);
  add(
    "eta_steps_grid.png",
    encodePng(imageGrid(rows, {
      rowTitles: etas.map((eta) => `eta ${eta}`),
      colTitles: stepsList.map((s) => `${s} steps`),
    })),
  );

  // 3. inversion round trips: an exact draw from the model's own distribution, and (on the default model) an image
  // of the data set the mixture was fitted to, which lies off the mixture's low-rank components
  start = performance.now();
  const shape = latentShape(ddim.unet, 1);
  const isDefault = model === DEFAULT_MODEL;
  const inModel = isDefault
    ? builtinMixture("shapes32").sample(1, new TorchGenerator(seed + 1000)).samples.reshape(shape)
    : eta0.samples.splitBatch()[0];
  const cases: [string, Tensor][] = [[
    isDefault ? "an exact draw from the model's distribution" : "a DDIM sample",
    inModel,
  ]];
  if (isDefault) {
    cases.push(["an image of the shapes data set (off the mixture's components)", drawShapes(1, { seed }).images]);
  }
  const inversionRows: Picture[][] = [];
  const rowTitles: string[] = [];
  io.log("3. DDIM inversion round trips (MSE on [0, 1]; the paper's CIFAR-10 Table 2 for scale):");
  for (const [name, original] of cases) {
    io.log(`   ${name}:`);
    const row: Picture[] = [original];
    for (const steps of [10, 20, 50, 100]) {
      const result = await reconstruct(ddim, original, { numInferenceSteps: steps, progress });
      io.log(
        `   ${String(steps).padStart(5)} steps: MSE ${result.mse.toExponential(2)}, PSNR ${result.psnr.toFixed(1)} dB` +
          `   (paper: ${PAPER_TABLE_2[steps]})`,
      );
      row.push(result.reconstruction);
    }
    inversionRows.push(row);
    rowTitles.push(inversionRows.length === 1 ? "model draw" : "data image");
  }
  if (isDefault) {
    io.log("   (off the components, the exact mixture's eps* switches sharply between them, so more steps need not");
    io.log("   help: the round trip can land on another shape; on the model's own draws the error falls with S)");
  }
  io.log(`   ${seconds(start)}`);
  add(
    "inversion.png",
    encodePng(imageGrid(inversionRows, {
      rowTitles,
      colTitles: ["original", "10 steps", "20 steps", "50 steps", "100 steps"],
    })),
  );

  // 4. an interpolation row between two seeds' x_T
  start = performance.now();
  const latents: [Tensor, Tensor] = [new TorchGenerator(seed).randn(shape), new TorchGenerator(seed + 1).randn(shape)];
  const row = await interpolationRow(ddim, latents, { count: 8, numInferenceSteps: 50, progress });
  io.log(`4. slerp interpolation between the x_T of seeds ${seed} and ${seed + 1}, 8 points: ${seconds(start)}`);
  add("interpolation.png", encodePng(compareImages(row.samples.splitBatch(), row.alphas.map((a) => a.toFixed(2)))));

  // 5. trajectories: pixel values of x_t along the DDIM eta 0 run, and 2-D paths on the ring model
  start = performance.now();
  add(
    "trajectory_pixels.png",
    await svgToPng(plotPixelTraces(eta0.trajectory ?? [], {
      title: "DDIM eta 0, 50 steps: six pixels of x_t along the run",
      field: "x",
    })),
  );
  if (model === DEFAULT_MODEL) {
    const ring = await DDIMPipeline.fromPretrained("builtin:ring2d");
    const ringDdpm = await DDPMPipeline.fromPretrained("builtin:ring2d");
    const ringEta0 = await ring.sample({
      numInferenceSteps: 50,
      eta: 0,
      seed,
      batchSize: 48,
      trajectory: true,
      progress,
    });
    const ringDdpmRun = await ringDdpm.sample({ seed, batchSize: 48, trajectory: 20, progress });
    const data = builtinMixture("ring2d").sample(400, new TorchGenerator(seed + 7)).samples;
    add(
      "trajectories_ring2d.png",
      await svgToPng(plotTrajectories2D({
        "DDIM eta 0, 50 steps": ringEta0.trajectory ?? [],
        "DDPM, 1000 steps": ringDdpmRun.trajectory ?? [],
      }, { title: "builtin:ring2d: 48 paths from the same x_T", data, start: ringEta0.xT })),
    );
  }
  io.log(`5. trajectory plots: ${seconds(start)}`);

  await writeOutputs(files, io);
  io.log(`demo done in ${seconds(started)}`);
}

/**
 * The demo's first part, on the trained network: DDPM with 1000 steps against DDIM (eta = 0) with 50 and 10 steps
 * from the same x_T, then the eta x steps grid. On a trained network few-step DDIM keeps its quality while few-step
 * stochastic sampling does not, which is the paper's headline result (its Table 1).
 */
async function learnedDemo(
  seed: number,
  io: CliIO,
  progress: ProgressReporter,
  add: (name: string, bytes: Uint8Array) => void,
): Promise<void> {
  const { unet, scheduler } = await loadPipelineParts(LEARNED_MODEL);
  const ddim = new DDIMPipeline({ unet, scheduler });
  const ddpm = new DDPMPipeline({ unet, scheduler });
  const batchSize = 4;
  io.log(`0. the trained network ${LEARNED_MODEL} (docs/learned-models.md measures it against its exact law):`);
  let start = performance.now();
  const ddpmRun = await ddpm.sample({ numInferenceSteps: trainSteps(ddpm), seed, batchSize, progress });
  io.log(`   DDPM, ${trainSteps(ddpm)} steps, ${batchSize} samples: ${seconds(start)}`);
  const rows = [ddpmRun.samples.splitBatch()];
  const rowTitles = [`DDPM, ${trainSteps(ddpm)} steps`];
  for (const steps of [50, 10]) {
    start = performance.now();
    const run = await ddim.sample({ numInferenceSteps: steps, eta: 0, seed, batchSize, progress });
    io.log(`   DDIM eta 0, ${steps} steps, same seed: ${seconds(start)}`);
    rows.push(run.samples.splitBatch());
    rowTitles.push(`DDIM eta 0, ${steps} steps`);
  }
  add("learned_ddpm_vs_ddim.png", encodePng(imageGrid(rows, { rowTitles })));
  start = performance.now();
  const etas = [0, 0.5, 1];
  const stepsList = [10, 20, 50, 100];
  const grid = await etaStepsGrid(ddim, { etas, stepsList, seed, batchSize: 1, progress });
  io.log(`   eta x steps grid, eta ${etas.join(", ")} x steps ${stepsList.join(", ")}: ${seconds(start)}`);
  add(
    "learned_eta_steps_grid.png",
    encodePng(imageGrid(grid, {
      rowTitles: etas.map((eta) => `eta ${eta}`),
      colTitles: stepsList.map((s) => `${s} steps`),
    })),
  );
  (unet as { dispose?: () => void }).dispose?.();
}

function consoleIO(): CliIO {
  return { log: (line) => console.log(line), error: (line) => console.error(line) };
}

if (import.meta.main) {
  process.exitCode = await main(process.argv.slice(2));
}
