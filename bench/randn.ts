/**
 * Nanoseconds per standard-normal draw of `TorchGenerator.fillRandn` on 3x256x256 and 16x3x32x32 elements, on the
 * JavaScript path ("before") and with the WebAssembly SIMD kernel ("after"), which give the same bits; then the size
 * from which the kernel pays for copying the generator's state in and out.
 *
 * Run: `npx bun bench/randn.ts` (or `deno run -A bench/randn.ts`). The CPU may be shared, so each figure is the
 * fastest and the median of many repetitions; the fastest is the one least disturbed by other work.
 *
 * @module
 */
import { loadavg } from "node:os";
import { TorchGenerator } from "../lib/core/torch_generator.ts";
import { RANDN_WASM_MIN_ELEMENTS, setRandnWasmEnabled } from "../lib/core/_randn_wasm.ts";

/** One benchmark row: element count, path, and nanoseconds per draw (fastest and median repetition). */
export interface RandnBenchRow {
  elements: number;
  path: "JavaScript" | "WebAssembly";
  minNs: number;
  medianNs: number;
}

/**
 * Time `fillRandn` on both paths for each element count.
 *
 * ns per draw = wall time of one `fillRandn(buffer)` / buffer length
 *
 * @param sizes element counts (default 3x256x256 and 16x3x32x32)
 * @param options `repetitions` per size and path (default 200)
 * @returns one row per size and path
 * @example
 * ```ts
 * import { benchRandn } from "./randn.ts";
 * const rows = benchRandn([4096], { repetitions: 20 });
 * ```
 */
export function benchRandn(
  sizes: number[] = [3 * 256 * 256, 16 * 3 * 32 * 32],
  options: { repetitions?: number } = {},
): RandnBenchRow[] {
  const repetitions = options.repetitions ?? 200;
  const rows: RandnBenchRow[] = [];
  try {
    for (const elements of sizes) {
      for (const path of ["JavaScript", "WebAssembly"] as const) {
        setRandnWasmEnabled(path === "WebAssembly", 16);
        const generator = new TorchGenerator(0);
        const buffer = new Float32Array(elements);
        for (let i = 0; i < Math.min(20, repetitions); i++) generator.fillRandn(buffer);
        const times: number[] = [];
        for (let i = 0; i < repetitions; i++) {
          const start = performance.now();
          generator.fillRandn(buffer);
          times.push(performance.now() - start);
        }
        times.sort((a, b) => a - b);
        rows.push({
          elements,
          path,
          minNs: (times[0] * 1e6) / elements,
          medianNs: (times[Math.floor(times.length / 2)] * 1e6) / elements,
        });
      }
    }
  } finally {
    setRandnWasmEnabled(true);
  }
  return rows;
}

if (import.meta.main) {
  const loadBefore = loadavg()[0];
  const print = (rows: RandnBenchRow[]) => {
    for (const row of rows) {
      const microseconds = (row.minNs * row.elements) / 1e3;
      console.log(
        `${String(row.elements).padStart(8)}  ${row.path.padEnd(12)}${row.minNs.toFixed(2).padStart(8)}${
          row.medianNs.toFixed(2).padStart(11)
        }${microseconds.toFixed(1).padStart(10)}`,
      );
    }
  };
  console.log("elements  path          min ns  median ns    min us   (per draw, then per call)");
  print(benchRandn());
  console.log(`\nsmall sizes (the generator uses the kernel from ${RANDN_WASM_MIN_ELEMENTS} elements):`);
  print(benchRandn([16, 32, 64, 128, 256, 1024], { repetitions: 2000 }));
  // The machine's 1-minute load average: figures taken above about 1 on two cores are inflated by other work.
  console.log(`load average (1 min): ${loadBefore.toFixed(2)} before, ${loadavg()[0].toFixed(2)} after`);
}
