/**
 * The embedded exact models: build time, graph size, `predict` time at batch 16, and a full 1000-step DDPM run of
 * the default image model `builtin:shapes32` at batch 16, through the same `loadUNet` + scheduler `step` path as a
 * pretrained UNet.
 *
 * Goal (the embedded-models issue): built in seconds, a few MB at most, and a 1000-step DDPM run of the image model
 * at batch 16 in seconds, not minutes, on a 2-core machine.
 *
 * Standalone: `bun bench/builtin_models.ts [--quick]`.
 *
 * @module
 */
import process from "node:process";
import { builtinModel, listBuiltinModels } from "../lib/models/builtin_models.ts";
import { DDPMScheduler } from "../lib/schedulers/ddpm.ts";
import { TorchGenerator } from "../lib/core/torch_generator.ts";
import { loadUNet } from "../lib/models/load.ts";

/** One model's figures. */
export interface BuiltinBenchRow {
  model: string;
  /** Seconds to fit the mixture and compile the graph (no cache). */
  buildSeconds: number;
  /** The ONNX graph's size in bytes. */
  bytes: number;
  /** Median milliseconds per `predict` at batch 16 (per-item timesteps). */
  predictMsBatch16: number;
}

/** Everything `benchBuiltins` measured. */
export interface BuiltinBenchResult {
  rows: BuiltinBenchRow[];
  /** The 1000-step DDPM run of shapes32 at batch 16 (fewer steps, extrapolated, in quick mode). */
  ddpm: { model: string; batch: number; steps: number; stepsTimed: number; seconds: number; msPerStep: number };
  markdown: string;
}

/**
 * Measure build time, size and speed of every embedded model, and a DDPM run of the default one.
 *
 * msPerStep = (model predict + scheduler step) time / steps
 *
 * @param options `quick` (fewer repetitions, 100 timed DDPM steps) and `log`
 * @returns the rows, the DDPM run and a markdown summary
 * @example
 * ```ts
 * import { benchBuiltins } from "./builtin_models.ts";
 * const { ddpm } = await benchBuiltins({ quick: true });
 * console.log(`${ddpm.seconds.toFixed(1)} s for ${ddpm.steps} DDPM steps`);
 * ```
 */
export async function benchBuiltins(
  options: { quick?: boolean; log?: (line: string) => void } = {},
): Promise<BuiltinBenchResult> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const repeats = options.quick ? 20 : 100;
  const rows: BuiltinBenchRow[] = [];
  for (const { name } of listBuiltinModels().filter((m) => m.kind === "exact")) {
    const t0 = performance.now();
    const model = await builtinModel(name, { cacheDir: false });
    const buildSeconds = (performance.now() - t0) / 1000;
    const unet = await loadUNet(`builtin:${name}`, { cacheDir: false });
    const size = model.config.sample_size;
    const generator = new TorchGenerator(0);
    const x = generator.randn([16, model.config.in_channels, size, size]);
    const timesteps = Array.from({ length: 16 }, (_, b) => (37 * b + 11) % 1000);
    for (let i = 0; i < 5; i++) await unet.predict(x, timesteps);
    const times: number[] = [];
    for (let i = 0; i < repeats; i++) {
      const start = performance.now();
      await unet.predict(x, timesteps);
      times.push(performance.now() - start);
    }
    unet.dispose();
    times.sort((a, b) => a - b);
    const row = {
      model: name,
      buildSeconds,
      bytes: model.onnx.length,
      predictMsBatch16: times[Math.floor(times.length / 2)],
    };
    rows.push(row);
    log(
      `${name}: build ${buildSeconds.toFixed(2)} s, ${(row.bytes / 1e6).toFixed(2)} MB, predict@16 ${
        row.predictMsBatch16.toFixed(3)
      } ms`,
    );
  }

  const unet = await loadUNet("builtin:shapes32", { cacheDir: false });
  const scheduler = DDPMScheduler.fromConfig((await builtinModel("shapes32", { cacheDir: false })).schedulerConfig);
  scheduler.setTimesteps(1000);
  const stepsTimed = options.quick ? 100 : 1000;
  const generator = new TorchGenerator(0);
  let x = generator.randn([16, 3, 32, 32]);
  const start = performance.now();
  for (const t of scheduler.timesteps.slice(0, stepsTimed)) {
    x = scheduler.step(await unet.predict(x, t), t, x, { generator }).prevSample;
  }
  const elapsed = (performance.now() - start) / 1000;
  unet.dispose();
  const msPerStep = (elapsed * 1000) / stepsTimed;
  const ddpm = { model: "shapes32", batch: 16, steps: 1000, stepsTimed, seconds: (msPerStep * 1000) / 1000, msPerStep };
  log(
    `shapes32 DDPM 1000 steps at batch 16: ${ddpm.seconds.toFixed(2)} s (${
      msPerStep.toFixed(2)
    } ms per step, ${stepsTimed} timed)`,
  );

  const markdown = [
    "| model | build s | MB | predict ms (batch 16) |",
    "|---|---|---|---|",
    ...rows.map((r) =>
      `| builtin:${r.model} | ${r.buildSeconds.toFixed(2)} | ${(r.bytes / 1e6).toFixed(2)} | ${
        r.predictMsBatch16.toFixed(3)
      } |`
    ),
    "",
    `DDPM, 1000 steps, builtin:shapes32, batch 16: ${ddpm.seconds.toFixed(2)} s (${
      msPerStep.toFixed(2)
    } ms per step: ` +
    `model plus scheduler step with its noise; ${stepsTimed} steps timed${
      stepsTimed < 1000 ? ", the rest extrapolated" : ""
    }).`,
  ].join("\n");
  return { rows, ddpm, markdown };
}

if (import.meta.main) {
  const result = await benchBuiltins({ quick: process.argv.includes("--quick") });
  console.log(result.markdown);
}
