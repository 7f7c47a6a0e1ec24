/**
 * UNet forward time at batch 1 for the exact architectures of google/ddpm-cifar10-32 (35.7M parameters) and
 * google/ddpm-celebahq-256 (113.7M parameters), compiled by `compileUNet` with random weights (random weights
 * cost exactly what trained ones cost), run by onnxruntime-node on the CPU. Also: compile and session-creation time,
 * peak resident memory, and what each tuning gave.
 *
 * Reference: diffusers + PyTorch 1.13 on this kind of 2-core machine (float32, batch 1): cifar10-32 0.16 s
 * (1 thread) / 0.33 s (2 threads); celebahq-256 6.7 s (1 thread) / 4.4 s (2 threads) (test/fixtures/unet/README.md). The goal
 * is at most 0.7x PyTorch's better figure.
 *
 * Standalone: `bun bench/unet.ts [--quick] [--only cifar10-32|celebahq-256]`.
 *
 * @module
 */
import * as ort from "onnxruntime-node";
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { OnnxUNet, type UNetRuntimeOptions } from "../lib/models/onnx_unet.ts";
import { parseUNetConfig, type UNet2DConfig } from "../lib/models/unet_config.ts";
import { compileUNet, type CompileUNetOptions, type UNetWeights } from "../lib/models/unet_onnx.ts";
import { Tensor } from "../lib/core/tensor.ts";

/** One measured variant. */
export interface UNetBenchRow {
  model: string;
  variant: string;
  /** Median ms per predict at batch 1. */
  medianMs: number;
  /** Fastest run, ms. */
  minMs: number;
  runs: number;
  /** PyTorch's better figure on this kind of machine, ms. */
  pytorchMs: number;
  /** medianMs / pytorchMs (goal: <= 0.7). */
  ratio: number;
  /** Session creation, ms. */
  sessionMs: number;
  /** Resident memory after the runs, MB. */
  rssMB: number;
}

/** Everything `benchUNet` measured. */
export interface UNetBenchResult {
  rows: UNetBenchRow[];
  /** Compile time per model, ms, and parameter counts. */
  compile: { model: string; parameters: number; compileMs: number; onnxMB: number }[];
  /** Peak resident set size of the process, MB. */
  peakRssMB: number;
  notes: string[];
  markdown: string;
}

const PYTORCH_MS: Record<string, number> = { "cifar10-32": 160, "celebahq-256": 4400 };

/**
 * What each tuning gave, measured on this kind of 2-core machine while it was otherwise idle (median of 3 runs of
 * celebahq-256, 30 of cifar10-32, each in a fresh process; run-to-run spread between processes is about +-0.1 s).
 */
const TUNING_NOTES = [
  "Threads: onnxruntime's own default (intraOpNumThreads 0) ran one thread on this 2-core machine: celebahq-256 2.96 s, cifar10-32 76 ms. Two threads (now the default, os.availableParallelism()): 1.64-1.74 s and 44 ms. This was the largest gain.",
  "Memory pattern (enableMemPattern): on, each celebahq-256 run took ~24,800 fresh page faults and ~200 ms of system time; off, ~220 and ~20 ms. Speed: 1.74 -> 1.66 s in separate processes, within noise in this bench's own table (1.645 s on, 1.665 s off); RSS after the runs 2.07 GB on, 1.67 GB off. Now off by default; the CPU arena still reuses memory (arena off: ~74,000 faults per run, slower).",
  "Where the time goes (onnxruntime profile, celebahq-256): Conv ~70-76% (NCHWc kernels from level 'all'), GroupNorm's InstanceNormalization 10-16% (single-threaded in onnxruntime), NCHWc ReorderInput/ReorderOutput around each GroupNorm ~5%, Add/Mul/Concat ~5%, SiLU (fused to QuickGelu) ~1%, attention (FusedMatMul, Softmax) <1%.",
  "GroupNorm formulation: Reshape + InstanceNormalization (kept: two-pass statistics, as PyTorch computes them); LayerNormalization over [N, G, -1] (parallel over groups, but one-pass float E[x^2] - E[x]^2 statistics, 2e-6 away from the two-pass output); the affine as one BatchNormalization instead of Mul + Add (bit-identical). With 2 threads all three were within run-to-run noise (1.59-1.79 s). The opset-21 GroupNormalization op has no native CPU kernel in onnxruntime 1.30: it is expanded into Cast/ReduceMean/Sub/Mul nodes and was 2x slower in isolation.",
  "Folding GroupNorm's affine into the next conv is not legal across SiLU (every ResnetBlock2D norm); only attention's q/k/v could take it, at 16x16 tokens, where attention is under 1% of the time. Folding the attention scale into W_q: within noise.",
  "Full run of this bench (idle machine, 2 threads): celebahq-256 median 1.66 s = 0.38x PyTorch's 4.4 s (goal <= 0.7x, 3.08 s); cifar10-32 45 ms = 0.28x of 0.16 s. Graph level 'all' (NCHWc conv layout) beats 'extended'/'basic'/'disabled' by ~15% (1.93-1.99 s); static shapes, preallocated outputs, no spinning and the folded attention scale stay within +-0.06 s of the default; the parallel execution mode is 1.9x slower. The timestep is one float32 per item; int64 would change nothing measurable (one Mul on a [1, 128] tensor).",
];

/**
 * Deterministic random weights of the shapes the compiler asks for (uniform, small, GroupNorm scales near 1).
 *
 * w ~ U(-a, a) with a = 1 / sqrt(fan_in) (PyTorch's default init bound), norm weights 1 + U(-0.1, 0.1)
 *
 * @param seed the PRNG seed
 * @returns a weight source and the running parameter count
 */
export function randomWeights(seed = 1): UNetWeights & { count: number } {
  let state = seed >>> 0 || 1;
  const source = {
    count: 0,
    take(name: string, shape: readonly number[]): Float32Array {
      const n = shape.reduce((a, b) => a * b, 1);
      const fanIn = shape.length > 1 ? shape.slice(1).reduce((a, b) => a * b, 1) : shape[0];
      const isNorm = name.includes("norm") && shape.length === 1;
      const bound = isNorm ? 0.1 : 1 / Math.sqrt(fanIn);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        state ^= state << 13;
        state ^= state >>> 17;
        state ^= state << 5;
        const u = (state >>> 0) / 4294967296;
        out[i] = (isNorm && name.endsWith("weight") ? 1 : 0) + (2 * u - 1) * bound;
      }
      source.count += n;
      return out;
    },
  };
  return source;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

const rssMB = () => process.memoryUsage().rss / 2 ** 20;

/**
 * Measure UNet predict time, memory and tunings for the google/ddpm-* architectures.
 *
 * ratio = median ms per predict / PyTorch's better ms
 *
 * @param options `quick` (fewer runs and variants), `only` (one model), `log`
 * @returns rows, compile figures, peak memory and a markdown section
 * @example
 * ```ts
 * import { benchUNet } from "./unet.ts";
 * const result = await benchUNet({ quick: true, only: "cifar10-32" });
 * ```
 */
export async function benchUNet(
  options: { quick?: boolean; only?: string; log?: (line: string) => void } = {},
): Promise<UNetBenchResult> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const quick = options.quick ?? false;
  const rows: UNetBenchRow[] = [];
  const compile: UNetBenchResult["compile"] = [];
  const models = ["cifar10-32", "celebahq-256"].filter((m) => options.only === undefined || options.only === m);
  let peak = rssMB();
  for (const model of models) {
    const path = fileURLToPath(new URL(`../test/fixtures/unet/configs/google-ddpm-${model}.json`, import.meta.url));
    const config = parseUNetConfig(JSON.parse(readFileSync(path, "utf8")), path);
    const big = model === "celebahq-256";
    const runs = big ? (quick ? 2 : 3) : quick ? 5 : 15;
    const variants: { name: string; runtime: UNetRuntimeOptions; compile?: CompileUNetOptions; prealloc?: boolean }[] =
      [
        { name: `default (opt all, ${availableParallelism()} threads, memory pattern off)`, runtime: {} },
        { name: "1 thread", runtime: { intraOpNumThreads: 1 } },
        { name: "onnxruntime's own thread default (intraOpNumThreads 0)", runtime: { intraOpNumThreads: 0 } },
      ];
    if (!quick) {
      variants.push(
        { name: "memory pattern on", runtime: { enableMemPattern: true } },
        {
          name: "no spinning",
          runtime: { sessionOptions: { extra: { session: { intra_op: { allow_spinning: "0" } } } } },
        },
        {
          name: "static shapes (free dimension overrides)",
          runtime: {
            sessionOptions: {
              freeDimensionOverrides: {
                batch: 1,
                height: config.sampleSize as number,
                width: config.sampleSize as number,
              },
            },
          },
        },
        { name: "graph opt extended (no NCHWc)", runtime: { graphOptimizationLevel: "extended" } },
        { name: "graph opt basic", runtime: { graphOptimizationLevel: "basic" } },
        { name: "graph opt disabled", runtime: { graphOptimizationLevel: "disabled" } },
        { name: "preallocated output", runtime: {}, prealloc: true },
        { name: "parallel execution mode", runtime: { executionMode: "parallel", interOpNumThreads: 2 } },
        { name: "attention scale folded into W_q", runtime: {}, compile: { foldAttentionScale: true } },
      );
    }
    let bytes: Uint8Array | undefined;
    let bytesFor = "";
    for (const variant of variants) {
      const key = JSON.stringify(variant.compile ?? {});
      if (bytes === undefined || bytesFor !== key) {
        bytes = undefined;
        const weights = randomWeights(1);
        const t0 = performance.now();
        bytes = compileUNet(config, weights, variant.compile);
        bytesFor = key;
        if (variant.compile === undefined && !compile.some((c) => c.model === model)) {
          compile.push({
            model,
            parameters: weights.count,
            compileMs: performance.now() - t0,
            onnxMB: bytes.length / 2 ** 20,
          });
          log(
            `${model}: ${weights.count} parameters, compiled in ${(performance.now() - t0).toFixed(0)} ms (${
              (bytes.length / 2 ** 20).toFixed(0)
            } MB)`,
          );
        }
        peak = Math.max(peak, rssMB());
      }
      rows.push(await measure(model, variant, bytes, config, runs, log));
      peak = Math.max(peak, rssMB());
    }
    bytes = undefined;
  }
  const usage = process.resourceUsage?.();
  const peakRssMB = Math.max(peak, usage ? usage.maxRSS / 1024 : 0);
  const notes = [
    `PyTorch reference (diffusers + PyTorch 1.13, float32, batch 1, this kind of 2-core machine): cifar10-32 0.16 s (1 thread) / 0.33 s (2); celebahq-256 6.7 s (1 thread) / 4.4 s (2). Goal: ratio <= 0.7.`,
    "The 2 cores may be shared with other work while this runs: figures are medians, and the minimum is shown too.",
    `Runs per variant: cifar10-32 ${quick ? 5 : 15}, celebahq-256 ${quick ? 2 : 3}, after one warm-up run.`,
    ...TUNING_NOTES,
  ];
  const table = [
    "| model | variant | median ms | min ms | runs | PyTorch ms | ratio | session ms | RSS MB |",
    "|---|---|---|---|---|---|---|---|---|",
    ...rows.map((r) =>
      `| ${r.model} | ${r.variant} | ${r.medianMs.toFixed(1)} | ${r.minMs.toFixed(1)} | ${r.runs} | ${r.pytorchMs} | ${
        r.ratio.toFixed(2)
      } | ${r.sessionMs.toFixed(0)} | ${r.rssMB.toFixed(0)} |`
    ),
  ].join("\n");
  const compileTable = compile.map((c) =>
    `- ${c.model}: ${c.parameters.toLocaleString("en-US")} parameters, graph compiled in ${
      c.compileMs.toFixed(0)
    } ms, ${c.onnxMB.toFixed(0)} MB of ONNX`
  ).join("\n");
  const markdown = [
    "ms per `predict` at batch 1, random weights of the exact google/ddpm-* shapes, onnxruntime-node CPU.",
    "",
    table,
    "",
    compileTable,
    `- peak resident memory of the process: ${peakRssMB.toFixed(0)} MB`,
    "",
    ...notes.map((n) => `- ${n}`),
  ].join("\n");
  return { rows, compile, peakRssMB, notes, markdown };
}

async function measure(
  model: string,
  variant: { name: string; runtime: UNetRuntimeOptions; prealloc?: boolean },
  bytes: Uint8Array,
  config: UNet2DConfig,
  runs: number,
  log: (line: string) => void,
): Promise<UNetBenchRow> {
  const size = config.sampleSize as number;
  const t0 = performance.now();
  const unet = await OnnxUNet.fromBytes(bytes, { sampleSize: size, config: config.raw }, variant.runtime);
  const sessionMs = performance.now() - t0;
  const sample = Tensor.zeros([1, config.inChannels, size, size]);
  for (let i = 0; i < sample.size; i++) sample.data[i] = Math.sin(i * 0.37);
  const times: number[] = [];
  const sig = unet.signature;
  const feeds = {
    [sig.sampleName]: new ort.Tensor("float32", sample.data, [...sample.shape]),
    [sig.timestepName]: new ort.Tensor("float32", Float32Array.from([500]), [1]),
  };
  const fetches = { [sig.outputName]: new ort.Tensor("float32", new Float32Array(sample.size), [...sample.shape]) };
  for (let i = 0; i <= runs; i++) {
    const start = performance.now();
    if (variant.prealloc) await unet.session.run(feeds, fetches);
    else await unet.predict(sample, 500);
    if (i > 0) times.push(performance.now() - start); // the first run is a warm-up
  }
  const rss = rssMB();
  unet.dispose();
  const medianMs = median(times);
  const row = {
    model,
    variant: variant.name,
    medianMs,
    minMs: Math.min(...times),
    runs,
    pytorchMs: PYTORCH_MS[model],
    ratio: medianMs / PYTORCH_MS[model],
    sessionMs,
    rssMB: rss,
  };
  log(
    `${model} ${variant.name}: median ${medianMs.toFixed(1)} ms (min ${row.minMs.toFixed(1)}), ratio ${
      row.ratio.toFixed(2)
    }, session ${sessionMs.toFixed(0)} ms, RSS ${rss.toFixed(0)} MB`,
  );
  return row;
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  const onlyIndex = args.indexOf("--only");
  const result = await benchUNet({
    quick: args.includes("--quick"),
    only: onlyIndex >= 0 ? args[onlyIndex + 1] : undefined,
  });
  console.log(result.markdown);
}
