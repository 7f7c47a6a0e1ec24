/**
 * A progress bar for long sampling runs: steps done, rate in steps per second and the time left, drawn with the
 * maintained `cli-progress` library on standard error. A quiet reporter draws nothing, so library code can always
 * report progress and let the caller decide.
 *
 * | quantity   | code           | meaning                                  |
 * |------------|----------------|------------------------------------------|
 * | k / T      | `value/total`  | steps done out of all steps              |
 * | k / dt     | `rate`         | steps per second since the bar started   |
 * | ETA        | `eta`          | (T - k) / rate, as cli-progress smooths it |
 *
 * @module
 */
import cliProgress from "cli-progress";
import process from "node:process";

/** Anything that can be told about progress: the pipelines and the command line call these three methods. */
export interface ProgressReporter {
  /** Begin a run of `total` steps, named `label`. */
  start(total: number, label?: string): void;
  /** Count `count` more steps done (default 1). */
  tick(count?: number): void;
  /** End the run (the bar stays on screen, complete). */
  stop(): void;
}

/** A stream the bar writes to: standard error, or a stand-in in tests. */
export interface ProgressStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
}

/** Options of `createProgress`. */
export interface ProgressOptions {
  /** Draw nothing at all (the command line's `--quiet`). */
  quiet?: boolean;
  /** Where to draw (default standard error). */
  stream?: ProgressStream;
  /** Also draw when the stream is not a terminal, one line per update (default: only on a terminal). */
  drawWhenNotTerminal?: boolean;
  /** Redraws per second at most (default 10). */
  fps?: number;
}

/**
 * A progress bar showing steps done, the rate and the time left; quiet when asked.
 *
 * rate = steps done / seconds elapsed; ETA = steps left / rate
 *
 * @param options `quiet`, `stream`, `drawWhenNotTerminal`, `fps`
 * @returns a reporter to `start`, `tick` and `stop`
 * @example
 * ```ts
 * import { createProgress } from "./progress.ts";
 * let drawn = "";
 * const stream = { write: (chunk: string) => (drawn += chunk) }; // standard error by default
 * const bar = createProgress({ stream, drawWhenNotTerminal: true });
 * bar.start(50, "DDIM eta 0");
 * for (let i = 0; i < 50; i++) bar.tick();
 * bar.stop();
 * if (!drawn.includes("DDIM eta 0") || !drawn.includes("50/50 steps")) throw new Error(`drew ${JSON.stringify(drawn)}`);
 * ```
 */
export function createProgress(options: ProgressOptions = {}): ProgressReporter {
  if (options.quiet) return quietProgress();
  const stream = options.stream ?? process.stderr;
  let bar: cliProgress.SingleBar | undefined;
  let started = 0;
  let done = 0;
  const payload = () => {
    const seconds = (performance.now() - started) / 1000;
    return { rate: seconds > 0 ? (done / seconds).toFixed(1) : "0.0" };
  };
  return {
    start(total: number, label = "sampling") {
      if (!Number.isInteger(total) || total < 0) throw new RangeError(`A progress total must be a count, got ${total}`);
      bar?.stop();
      bar = new cliProgress.SingleBar({
        format: `${label} |{bar}| {value}/{total} steps | {rate} steps/s | elapsed {duration_formatted} | ` +
          `left {eta_formatted}`,
        stream: stream as never,
        noTTYOutput: options.drawWhenNotTerminal ?? false,
        notTTYSchedule: 1000,
        fps: options.fps ?? 10,
        hideCursor: false,
        etaBuffer: 20,
      }, cliProgress.Presets.shades_classic);
      started = performance.now();
      done = 0;
      bar.start(total, 0, payload());
    },
    tick(count = 1) {
      if (!bar) return;
      done += count;
      bar.increment(count, payload());
    },
    stop() {
      if (!bar) return;
      bar.update(done, payload());
      bar.stop();
      bar = undefined;
    },
  };
}

/**
 * A reporter that draws nothing (the `--quiet` mode, and the library's default).
 *
 * @returns a reporter whose methods do nothing
 * @example
 * ```ts
 * import { quietProgress } from "./progress.ts";
 * const reporter = quietProgress();
 * reporter.start(10);
 * reporter.tick(3);
 * reporter.stop(); // nothing drawn, nothing thrown
 * if (Object.keys(reporter).join() !== "start,tick,stop") throw new Error("a reporter has start, tick and stop");
 * ```
 */
export function quietProgress(): ProgressReporter {
  return { start() {}, tick() {}, stop() {} };
}

/**
 * Turn a pipeline's `progress` option into a reporter: true draws a bar, false or absent draws nothing.
 *
 * @param progress a boolean or a reporter of the caller's own
 * @returns the reporter to use
 * @example
 * ```ts
 * import { resolveProgress } from "./progress.ts";
 * const mine = { start() {}, tick() {}, stop() {} };
 * if (resolveProgress(mine) !== mine) throw new Error("a caller's own reporter is used as it is");
 * const quiet = resolveProgress(false);
 * if (quiet === mine || typeof quiet.tick !== "function") throw new Error("false gives a quiet reporter");
 * ```
 */
export function resolveProgress(progress: boolean | ProgressReporter | undefined): ProgressReporter {
  if (progress === true) return createProgress();
  if (!progress) return quietProgress();
  return progress;
}
