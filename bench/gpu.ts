/**
 * The UNet on a GPU through onnxruntime-node's WebGPU execution provider (Dawn on Vulkan), against the CPU provider:
 * the google/ddpm-celebahq-256 architecture (113.7M parameters, random weights from `randomWeights` of
 * bench/unet.ts) and the embedded exact model `builtin:shapes32`, each loaded with
 * `loadUNet(..., { executionProvider })`.
 *
 * For each model and provider: the WebGPU output checked against the CPU output on one batch (tolerance below),
 * median ms per `predict` at batch 1 and 16, and images/s of 50-step DDIM (eta = 0, `DDIMPipeline`) at batch 1
 * and 16. A WebGPU failure is reported (the error, the onnxruntime version, the adapter lines of onnxruntime's
 * verbose log, the Vulkan loader and ICD settings) and the other measurements go on.
 *
 * Tolerance (WebGPU against CPU, float32): relative L2 error ||y_gpu - y_cpu|| / ||y_cpu|| <= 1e-3 and
 * max |y_gpu - y_cpu| <= 1e-2 max |y_cpu|. Why: both providers compute in float32 but sum convolutions and matrix
 * products in another order (about sqrt(K) eps32 ~ 1e-5 relative per layer for K = 3*3*512 terms, over ~100
 * layers), and WGSL's `sin`, `cos` and `exp` are only bounded to an absolute error of 2^-11 ~ 4.9e-4 (WGSL spec,
 * "Floating point accuracy"), which enters through the sinusoidal timestep embedding. 1e-3 is about twice that
 * bound; a wrong kernel (a swapped axis, a missed bias) gives errors of order 1.
 *
 * Standalone: `bun bench/gpu.ts [--cpu-only] [--quick] [--models celebahq-256,shapes32] [--config FILE]
 * [--ddim-cap-s 30] [--out DIR]`. `bench/gpu/run.sh` runs it on a GPU machine.
 *
 * @module
 */
import * as ort from "onnxruntime-node";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { builtinModel } from "../lib/models/builtin_models.ts";
import { DDIMScheduler } from "../lib/schedulers/ddim.ts";
import { DDIMPipeline } from "../lib/pipelines/ddim_pipeline.ts";
import { Tensor } from "../lib/core/tensor.ts";
import { loadUNet } from "../lib/models/load.ts";
import type { OnnxUNet } from "../lib/models/onnx_unet.ts";
import { parseUNetConfig } from "../lib/models/unet_config.ts";
import { compileUNet } from "../lib/models/unet_onnx.ts";
import { randomWeights } from "./unet.ts";

/** Relative L2 error allowed between WebGPU and CPU outputs (see the module doc). */
export const GPU_REL_L2_TOLERANCE = 1e-3;
/** Largest elementwise difference allowed, as a fraction of max |y_cpu|. */
export const GPU_MAX_ABS_FRACTION = 1e-2;

/** The models `benchGpu` knows. */
export type GpuBenchModel = "celebahq-256" | "shapes32";

/** WebGPU output against CPU output on one batch. */
export interface GpuCheck {
  model: GpuBenchModel;
  batch: number;
  timesteps: number[];
  /** max |y_gpu - y_cpu| */
  maxAbsDiff: number;
  /** max |y_cpu| */
  maxAbsCpu: number;
  /** ||y_gpu - y_cpu|| / ||y_cpu|| */
  relL2: number;
  pass: boolean;
}

/** Speed of one model on one provider at one batch size. */
export interface GpuTiming {
  model: GpuBenchModel;
  provider: "cpu" | "webgpu";
  batch: number;
  /** Session creation (including graph optimisation and, for WebGPU, device setup), ms. */
  sessionMs: number;
  /** Median ms per `predict` after one warm-up call. */
  predictMs: number;
  predictRuns: number;
  /** DDIM steps actually run (50, or fewer when 50 would exceed the time cap). */
  ddimStepsRun: number;
  /** Seconds of 50-step DDIM (measured, or scaled from `ddimStepsRun` steps). */
  ddimSeconds: number;
  /** batch / ddimSeconds */
  imagesPerSecond: number;
  /** True when `ddimSeconds` is scaled from fewer than 50 steps. */
  extrapolated: boolean;
}

/** What failed on the WebGPU provider. */
export interface WebGpuFailure {
  model: GpuBenchModel;
  stage: "session" | "predict" | "ddim";
  error: string;
}

/** Everything `benchGpu` measured and found. */
export interface GpuBenchResult {
  /** onnxruntime-node's version. */
  onnxruntime: string;
  /** The JavaScript runtime and its version. */
  runtime: string;
  /** Processor cores seen by the CPU provider. */
  cpuCores: number;
  webgpu: {
    tried: boolean;
    /** True when every WebGPU step ran. */
    ok: boolean;
    failures: WebGpuFailure[];
    /** Lines of onnxruntime's verbose log that mention the adapter, Dawn, Vulkan or WebGPU. */
    log: string[];
    /** The Vulkan loader found by `ldconfig -p` and the ICD variables. */
    vulkan: string[];
  };
  checks: GpuCheck[];
  timings: GpuTiming[];
  notes: string[];
  markdown: string;
}

/** Options of `benchGpu`. */
export interface GpuBenchOptions {
  /** Models to run (default both). */
  models?: GpuBenchModel[];
  /** Skip the WebGPU provider. */
  cpuOnly?: boolean;
  /** Fewer timed runs. */
  quick?: boolean;
  /** Batch sizes for timing (default [1, 16]). */
  batches?: number[];
  /** google/ddpm-celebahq-256's config.json (default: the one in test/fixtures). */
  configPath?: string;
  /** Longest time one 50-step DDIM run may take before it is measured on fewer steps and scaled, s (default 30). */
  ddimCapSeconds?: number;
  /** Run the verbose WebGPU probe in a child process (default true when WebGPU is tried under Bun or Node). */
  probe?: boolean;
  log?: (line: string) => void;
}

const DEFAULT_CONFIG = fileURLToPath(
  new URL("../test/fixtures/unet/configs/google-ddpm-celebahq-256.json", import.meta.url),
);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A deterministic, non-constant input x_t of the given shape. */
function patternSample(shape: number[]): Tensor {
  const sample = Tensor.zeros(shape);
  for (let i = 0; i < sample.size; i++) sample.data[i] = Math.sin(i * 0.37) + 0.25 * Math.cos(i * 0.011);
  return sample;
}

/**
 * Compare two outputs with the tolerance of the module doc.
 *
 * relL2 = ||a - b|| / ||b||, maxAbsDiff = max |a - b|
 *
 * @param gpu the WebGPU output
 * @param cpu the CPU output (the reference)
 * @returns the differences and whether they pass
 * @example
 * ```ts
 * import { compareOutputs } from "./gpu.ts";
 * compareOutputs(new Float32Array([1, 2]), new Float32Array([1, 2])).pass; // true
 * ```
 */
export function compareOutputs(
  gpu: Float32Array,
  cpu: Float32Array,
): { maxAbsDiff: number; maxAbsCpu: number; relL2: number; pass: boolean } {
  if (gpu.length !== cpu.length) throw new RangeError(`Outputs differ in size: ${gpu.length} against ${cpu.length}`);
  let diff2 = 0;
  let ref2 = 0;
  let maxAbsDiff = 0;
  let maxAbsCpu = 0;
  let finite = true; // a NaN in either output fails the check
  for (let i = 0; i < cpu.length; i++) {
    const d = gpu[i] - cpu[i];
    diff2 += d * d;
    ref2 += cpu[i] * cpu[i];
    if (Number.isNaN(d)) finite = false;
    else if (Math.abs(d) > maxAbsDiff) maxAbsDiff = Math.abs(d);
    maxAbsCpu = Math.max(maxAbsCpu, Math.abs(cpu[i]));
  }
  if (!finite) return { maxAbsDiff: Number.NaN, maxAbsCpu, relL2: Number.NaN, pass: false };
  const relL2 = Math.sqrt(diff2) / Math.max(Math.sqrt(ref2), Number.MIN_VALUE);
  const pass = relL2 <= GPU_REL_L2_TOLERANCE && maxAbsDiff <= GPU_MAX_ABS_FRACTION * maxAbsCpu;
  return { maxAbsDiff, maxAbsCpu, relL2, pass };
}

interface PreparedModel {
  name: GpuBenchModel;
  /** What `loadUNet` is given. */
  path: string;
  scheduler: DDIMScheduler;
  shape: [number, number, number];
  cleanup: () => void;
}

async function prepare(name: GpuBenchModel, configPath: string, log: (line: string) => void): Promise<PreparedModel> {
  if (name === "shapes32") {
    const model = await builtinModel("shapes32");
    const c = model.config;
    return {
      name,
      path: "builtin:shapes32",
      scheduler: DDIMScheduler.fromConfig(model.schedulerConfig),
      shape: [c.in_channels, c.sample_size, c.sample_size],
      cleanup: () => {},
    };
  }
  if (!existsSync(configPath)) {
    throw new Error(
      `The celebahq-256 config is missing at ${configPath}; pass --config with google-ddpm-celebahq-256.json`,
    );
  }
  const raw = JSON.parse(readFileSync(configPath, "utf8"));
  const config = parseUNetConfig(raw, configPath);
  const weights = randomWeights(1);
  const t0 = performance.now();
  const bytes = compileUNet(config, weights);
  const dir = mkdtempSync(join(tmpdir(), "ddimlab-gpu-"));
  writeFileSync(join(dir, "model.onnx"), bytes);
  writeFileSync(join(dir, "config.json"), JSON.stringify(raw));
  log(
    `celebahq-256: ${weights.count} parameters, compiled in ${(performance.now() - t0).toFixed(0)} ms, ${
      (bytes.length / 2 ** 20).toFixed(0)
    } MB of ONNX`,
  );
  const size = config.sampleSize as number;
  return {
    name,
    path: join(dir, "model.onnx"),
    // google/ddpm-celebahq-256's scheduler is diffusers' default linear schedule (1e-4 to 0.02, 1000 steps).
    scheduler: DDIMScheduler.fromConfig({}),
    shape: [config.inChannels, size, size],
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/**
 * Measure the UNet on the WebGPU and CPU providers and check one against the other.
 *
 * imagesPerSecond = batch / (seconds of 50 DDIM steps, scheduler and transfers included)
 *
 * @param options models, `cpuOnly`, `quick`, batch sizes, the celebahq config path, the DDIM time cap, `log`
 * @returns the checks, the timings, what failed on WebGPU and a markdown report
 * @example
 * ```ts
 * import { benchGpu } from "./gpu.ts";
 * const result = await benchGpu({ models: ["shapes32"], cpuOnly: true, quick: true, batches: [1] });
 * console.log(result.markdown);
 * ```
 */
export async function benchGpu(options: GpuBenchOptions = {}): Promise<GpuBenchResult> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const models = options.models ?? ["celebahq-256", "shapes32"];
  for (const m of models) {
    if (m !== "celebahq-256" && m !== "shapes32") {
      throw new RangeError(`Unknown model ${JSON.stringify(m)}; use celebahq-256 or shapes32`);
    }
  }
  const batches = options.batches ?? [1, 16];
  for (const b of batches) {
    if (!Number.isInteger(b) || b < 1) throw new RangeError(`Batch sizes must be positive integers, got ${b}`);
  }
  const quick = options.quick ?? false;
  const cap = options.ddimCapSeconds ?? 30;
  if (!(cap > 0)) throw new RangeError(`ddimCapSeconds must be positive, got ${cap}`);
  const providers: ("cpu" | "webgpu")[] = options.cpuOnly ? ["cpu"] : ["webgpu", "cpu"];
  const bun = (globalThis as { Bun?: { version: string } }).Bun;
  const deno = (globalThis as { Deno?: { version: { deno: string } } }).Deno;
  const result: GpuBenchResult = {
    onnxruntime: ort.env.versions?.node ?? ort.env.versions?.common ?? "unknown",
    runtime: bun ? `bun ${bun.version}` : deno ? `deno ${deno.version.deno}` : `node ${process.versions.node}`,
    cpuCores: cpus().length,
    webgpu: { tried: !options.cpuOnly, ok: !options.cpuOnly, failures: [], log: [], vulkan: [] },
    checks: [],
    timings: [],
    notes: [],
    markdown: "",
  };
  const fail = (model: GpuBenchModel, stage: WebGpuFailure["stage"], error: unknown) => {
    result.webgpu.ok = false;
    result.webgpu.failures.push({ model, stage, error: message(error) });
    log(`WebGPU ${stage} failed for ${model}: ${message(error)}`);
  };
  if (!options.cpuOnly) {
    result.webgpu.vulkan = vulkanFacts();
    if (options.probe ?? !deno) result.webgpu.log = probeWebGpu(log);
  }
  for (const name of models) {
    const model = await prepare(name, options.configPath ?? DEFAULT_CONFIG, log);
    try {
      // The check batch: two items at a small and a large timestep, so both ends of the embedding are covered.
      const checkSample = patternSample([2, ...model.shape]);
      const checkTimesteps = [10, 725];
      const outputs: Partial<Record<"cpu" | "webgpu", Float32Array>> = {};
      for (const provider of providers) {
        let unet: OnnxUNet;
        const t0 = performance.now();
        try {
          unet = await loadUNet(model.path, { executionProvider: provider });
        } catch (error) {
          if (provider === "webgpu") {
            fail(name, "session", error);
            continue;
          }
          throw error;
        }
        const sessionMs = performance.now() - t0;
        log(`${name} ${provider}: session in ${sessionMs.toFixed(0)} ms`);
        try {
          try {
            outputs[provider] = (await unet.predict(checkSample, checkTimesteps)).data;
          } catch (error) {
            if (provider !== "webgpu") throw error;
            fail(name, "predict", error);
            continue;
          }
          for (const batch of batches) {
            const timing = await timeProvider(unet, model, provider, batch, sessionMs, { quick, cap, log });
            if (typeof timing === "string") {
              if (provider !== "webgpu") throw new Error(timing);
              fail(name, "ddim", timing);
              break;
            }
            result.timings.push(timing);
          }
        } finally {
          unet.dispose();
        }
      }
      if (outputs.cpu && outputs.webgpu) {
        const check = {
          model: name,
          batch: 2,
          timesteps: checkTimesteps,
          ...compareOutputs(outputs.webgpu, outputs.cpu),
        };
        result.checks.push(check);
        log(
          `${name}: WebGPU against CPU: relative L2 ${check.relL2.toExponential(2)}, max abs ${
            check.maxAbsDiff.toExponential(2)
          } (max |cpu| ${check.maxAbsCpu.toFixed(3)}): ${check.pass ? "pass" : "FAIL"}`,
        );
      }
    } finally {
      model.cleanup();
    }
  }
  result.notes = [
    `Tolerance, WebGPU against CPU (float32): relative L2 <= ${GPU_REL_L2_TOLERANCE}, max abs <= ${GPU_MAX_ABS_FRACTION} x max |cpu| (summation order differs; WGSL sin/cos/exp are bounded only to 2^-11 absolute).`,
    "celebahq-256: random weights of the exact google/ddpm-celebahq-256 shapes (speed does not depend on the values); shapes32: the embedded exact model.",
    `DDIM: eta = 0, 50 steps, DDIMPipeline with x_T drawn by TorchGenerator, every step copies x_t to the provider and eps back; a run longer than ${cap} s is measured on fewer steps and scaled to 50 (marked "scaled").`,
    `Predict: median of ${quick ? "2-3" : "5-10"} timed calls after one warm-up call at the same batch size.`,
  ];
  result.markdown = renderMarkdown(result);
  return result;
}

async function timeProvider(
  unet: OnnxUNet,
  model: PreparedModel,
  provider: "cpu" | "webgpu",
  batch: number,
  sessionMs: number,
  settings: { quick: boolean; cap: number; log: (line: string) => void },
): Promise<GpuTiming | string> {
  const sample = patternSample([batch, ...model.shape]);
  const maxRuns = settings.quick ? (batch > 1 ? 2 : 3) : batch > 1 ? 5 : 10;
  const times: number[] = [];
  try {
    await unet.predict(sample, 500); // warm-up: shader compilation, memory planning for this shape
    const started = performance.now();
    for (let i = 0; i < maxRuns; i++) {
      const t0 = performance.now();
      await unet.predict(sample, 500);
      times.push(performance.now() - t0);
      if (performance.now() - started > (settings.cap * 1000) / 2) break;
    }
  } catch (error) {
    return `predict at batch ${batch}: ${message(error)}`;
  }
  const predictMs = median(times);
  const fullSteps = 50;
  const estimated = (predictMs * fullSteps) / 1000;
  const stepsRun = estimated > settings.cap ? Math.max(2, Math.floor((settings.cap * 1000) / predictMs)) : fullSteps;
  const pipe = new DDIMPipeline({ unet, scheduler: model.scheduler });
  let seconds: number;
  try {
    const t0 = performance.now();
    await pipe.sample({
      numInferenceSteps: Math.min(stepsRun, fullSteps),
      eta: 0,
      seed: 0,
      batchSize: batch,
      progress: false,
    });
    seconds = (performance.now() - t0) / 1000;
  } catch (error) {
    return `DDIM at batch ${batch}: ${message(error)}`;
  }
  const steps = Math.min(stepsRun, fullSteps);
  const ddimSeconds = (seconds * fullSteps) / steps;
  const timing: GpuTiming = {
    model: model.name,
    provider,
    batch,
    sessionMs,
    predictMs,
    predictRuns: times.length,
    ddimStepsRun: steps,
    ddimSeconds,
    imagesPerSecond: batch / ddimSeconds,
    extrapolated: steps < fullSteps,
  };
  settings.log(
    `${model.name} ${provider} batch ${batch}: ${predictMs.toFixed(1)} ms per predict, 50-step DDIM ${
      ddimSeconds.toFixed(2)
    } s` +
      `${timing.extrapolated ? ` (scaled from ${steps} steps)` : ""}, ${timing.imagesPerSecond.toFixed(3)} images/s`,
  );
  return timing;
}

/** The Vulkan loader as `ldconfig -p` lists it, and the ICD variables Dawn's loader reads. */
function vulkanFacts(): string[] {
  const facts: string[] = [];
  const ldconfig = spawnSync("ldconfig", ["-p"], { encoding: "utf8" });
  const loaders = (ldconfig.stdout ?? "").split("\n").filter((l) => l.includes("libvulkan")).map((l) => l.trim());
  facts.push(
    loaders.length > 0
      ? `loader: ${loaders.join("; ")}`
      : "loader: libvulkan.so.1 not in `ldconfig -p` (Dawn cannot reach Vulkan)",
  );
  for (const key of ["VK_DRIVER_FILES", "VK_ICD_FILENAMES", "VK_ADD_DRIVER_FILES"]) {
    const value = process.env[key];
    if (value !== undefined) {
      facts.push(`${key}=${value}${value.split(":").every((f) => existsSync(f)) ? "" : " (a listed file is missing)"}`);
    }
  }
  return facts;
}

/**
 * Create one WebGPU session in a child process with onnxruntime's verbose log and keep the lines about the
 * adapter, Dawn, Vulkan and WebGPU (onnxruntime-node does not expose the adapter to JavaScript).
 */
function probeWebGpu(log: (line: string) => void): string[] {
  const self = fileURLToPath(import.meta.url);
  const bun = (globalThis as { Bun?: unknown }).Bun !== undefined;
  if (!bun) return ["(verbose probe skipped: it runs this .ts file directly, which needs Bun)"];
  const child = spawnSync(process.execPath, [self, "--probe-webgpu"], {
    encoding: "utf8",
    timeout: 120_000,
    maxBuffer: 64 * 2 ** 20,
  });
  const text = `${child.stdout ?? ""}\n${child.stderr ?? ""}`;
  const wanted = /adapter|dawn|vulkan|webgpu|vk_|driver|icd|PROBE/i;
  const settings = /ParseEpConfig|ParseWebGpuContextConfig/; // the provider's option echo, the same on every machine
  const lines = text.split("\n").map((l) => l.trim()).filter((l) => l && wanted.test(l) && !settings.test(l));
  const kept = lines.length > 40
    ? [...lines.slice(0, 20), `... ${lines.length - 40} lines left out ...`, ...lines.slice(-20)]
    : lines;
  if (child.error) kept.push(`probe process: ${child.error.message}`);
  log(`WebGPU probe: ${kept.find((l) => l.startsWith("PROBE")) ?? "no result line"}`);
  return kept;
}

async function runProbe(): Promise<void> {
  ort.env.logLevel = "verbose";
  const model = await builtinModel("shapes32");
  try {
    const session = await ort.InferenceSession.create(model.onnx, {
      executionProviders: ["webgpu"],
      logSeverityLevel: 0,
      logVerbosityLevel: 0,
    });
    await session.release();
    console.log("PROBE OK: a WebGPU session was created");
  } catch (error) {
    console.log(`PROBE FAILED: ${message(error)}`);
  }
}

function renderMarkdown(r: GpuBenchResult): string {
  const lines = [
    `onnxruntime-node ${r.onnxruntime}, ${r.runtime}, ${r.cpuCores} CPU cores.`,
    "",
  ];
  if (r.webgpu.tried) {
    lines.push(`WebGPU: ${r.webgpu.ok ? "ran" : "FAILED"}`);
    for (const f of r.webgpu.failures) lines.push(`- ${f.model}, ${f.stage}: ${f.error}`);
    for (const v of r.webgpu.vulkan) lines.push(`- Vulkan ${v}`);
    if (r.webgpu.log.length > 0) {
      lines.push("", "onnxruntime verbose log (adapter, Dawn, Vulkan lines):", "```", ...r.webgpu.log, "```");
    }
    lines.push("");
  } else {
    lines.push("WebGPU: not tried (--cpu-only)", "");
  }
  if (r.checks.length > 0) {
    lines.push(
      "| model | check batch | timesteps | relative L2 | max abs diff | max abs cpu | within tolerance |",
      "|---|---|---|---|---|---|---|",
      ...r.checks.map((c) =>
        `| ${c.model} | ${c.batch} | ${c.timesteps.join(", ")} | ${c.relL2.toExponential(2)} | ${
          c.maxAbsDiff.toExponential(2)
        } | ${c.maxAbsCpu.toFixed(3)} | ${c.pass ? "yes" : "NO"} |`
      ),
      "",
    );
  }
  lines.push(
    "| model | provider | batch | session ms | ms per predict | runs | 50-step DDIM s | images/s |",
    "|---|---|---|---|---|---|---|---|",
    ...r.timings.map((t) =>
      `| ${t.model} | ${t.provider} | ${t.batch} | ${t.sessionMs.toFixed(0)} | ${
        t.predictMs.toFixed(1)
      } | ${t.predictRuns} | ${t.ddimSeconds.toFixed(2)}${t.extrapolated ? ` (scaled from ${t.ddimStepsRun})` : ""} | ${
        t.imagesPerSecond.toFixed(3)
      } |`
    ),
    "",
    ...r.notes.map((n) => `- ${n}`),
  );
  return lines.join("\n");
}

function parseCli(args: string[]): GpuBenchOptions & { out?: string } {
  const value = (flag: string) => {
    const i = args.indexOf(flag);
    if (i < 0) return undefined;
    if (i + 1 >= args.length) throw new Error(`${flag} needs a value`);
    return args[i + 1];
  };
  const models = value("--models");
  const batches = value("--batches");
  const capText = value("--ddim-cap-s");
  return {
    cpuOnly: args.includes("--cpu-only"),
    quick: args.includes("--quick"),
    ...(models ? { models: models.split(",") as GpuBenchModel[] } : {}),
    ...(batches ? { batches: batches.split(",").map(Number) } : {}),
    ...(capText ? { ddimCapSeconds: Number(capText) } : {}),
    ...(value("--config") ? { configPath: value("--config") } : {}),
    ...(value("--out") ? { out: value("--out") } : {}),
  };
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  if (args.includes("--probe-webgpu")) {
    await runProbe();
  } else {
    const { out, ...options } = parseCli(args);
    const result = await benchGpu(options);
    console.log(result.markdown);
    if (out !== undefined) {
      mkdirSync(out, { recursive: true });
      const { markdown, ...data } = result;
      writeFileSync(join(out, "gpu.json"), `${JSON.stringify(data, null, 2)}\n`);
      writeFileSync(join(out, "gpu.md"), `${markdown}\n`);
    }
  }
}
