/**
 * `npm run bench` (`bun bench/run.ts`; `deno task bench`): runs every benchmark and writes docs/benchmarks.md with
 * its figures as SVG files under docs/benchmarks/, stamped with the machine and the date. Every number and figure in
 * that page comes from this run; nothing is typed in by hand except the DDIM paper's reference values, quoted with
 * their source.
 *
 * Flags:
 * - `--quick`: small step counts and sample sizes (a couple of minutes on a 2-core machine); the figures are noisy.
 * - `--only NAME[,NAME]`: run only the named sections (quality, reconstruction, convergence, solvers, schedulers, unet,
 *   builtins, end_to_end).
 * - `--out DIR`: write `DIR/benchmarks.md` and `DIR/benchmarks/*.svg` instead of `docs/`.
 *
 * @module
 */
import * as Plot from "@observablehq/plot";
import { parseHTML } from "linkedom";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import process from "node:process";
import type { QualityResult } from "./quality.ts";
import type { ReconstructionBenchResult } from "./reconstruction.ts";
import type { ConvergenceResult } from "./convergence.ts";
import type { SolversResult } from "./solvers.ts";
import type { EndToEndResult } from "./end_to_end.ts";

/** What every benchmark function accepts. */
export interface BenchOptions {
  /** Small sizes for a fast, noisy run. */
  quick?: boolean;
  /** Where progress lines go (default: stderr). */
  log?: (line: string) => void;
}

/** One section of the generated page. */
interface Section {
  name: string;
  title: string;
  seconds: number;
  markdown: string;
}

/** A line series for `linePlot`. */
interface Series {
  name: string;
  points: readonly (readonly [number, number])[];
  dashed?: boolean;
}

const repoRoot = new URL("../", import.meta.url);

/** The machine and runtimes this run used, for the page's stamp. */
export function machineStamp(): Record<string, string> {
  const cpus = os.cpus();
  const versions = process.versions as Record<string, string | undefined>;
  const deno = (globalThis as { Deno?: { version: { deno: string; v8: string } } }).Deno;
  const runtime = versions.bun
    ? `Bun ${versions.bun} (Node API ${versions.node})`
    : deno
    ? `Deno ${deno.version.deno} (V8 ${deno.version.v8})`
    : `Node.js ${versions.node}`;
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
    cpu: cpus[0]?.model?.trim() ?? "unknown",
    cores: String(cpus.length),
    memory: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    os: `${os.type()} ${os.release()} (${os.arch()})`,
    runtime,
    "onnxruntime-node": packageVersion("onnxruntime-node"),
  };
}

function packageVersion(name: string): string {
  try {
    const text = readFileSync(new URL(`node_modules/${name}/package.json`, repoRoot), "utf8");
    return JSON.parse(text).version;
  } catch {
    return "not installed";
  }
}

/** A markdown table from a header row and body rows. */
export function markdownTable(header: readonly string[], body: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...body.map(line)].join("\n");
}

/** A number with `digits` significant digits, in plain or exponent form as suits its size. */
export function formatNumber(value: number, digits = 3): string {
  if (!Number.isFinite(value)) return String(value);
  if (value === 0) return "0";
  const magnitude = Math.abs(value);
  if (magnitude >= 1e-3 && magnitude < 1e5) return Number(value.toPrecision(digits)).toString();
  return value.toExponential(digits - 1);
}

/** A line chart rendered to standalone SVG text with Observable Plot on a linkedom document. */
export function linePlot(
  series: readonly Series[],
  options: { xLabel: string; yLabel: string; logX?: boolean; logY?: boolean },
): string {
  const { document } = parseHTML("<!DOCTYPE html><html><body></body></html>");
  const rows = series.flatMap((s) =>
    s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!options.logY || y > 0)).map((
      [x, y],
    ) => ({ x, y, name: s.name, dashed: s.dashed ?? false }))
  );
  const solid = rows.filter((r) => !r.dashed);
  const dashed = rows.filter((r) => r.dashed);
  const names = series.map((s) => s.name);
  const svg = Plot.plot({
    document,
    width: 720,
    height: 420,
    marginRight: 150,
    marginLeft: 60,
    style: { background: "white", color: "black" },
    x: { type: options.logX ? "log" : "linear", label: options.xLabel, grid: true },
    y: { type: options.logY ? "log" : "linear", label: options.yLabel, grid: true, tickFormat: "~g" },
    color: { domain: names, scheme: "tableau10" },
    marks: [
      Plot.line(solid, { x: "x", y: "y", z: "name", stroke: "name", strokeWidth: 1.8 }),
      Plot.line(dashed, { x: "x", y: "y", z: "name", stroke: "name", strokeDasharray: "5,4" }),
      Plot.dot(rows, { x: "x", y: "y", stroke: "name", r: 2.5 }),
      Plot.text(
        solid,
        Plot.selectLast({ x: "x", y: "y", z: "name", text: "name", fill: "name", dx: 6, textAnchor: "start" }),
      ),
      // dashed series (floors, fits, references) are labelled at their first point, above it, to avoid overlaps
      Plot.text(
        dashed,
        Plot.selectFirst({ x: "x", y: "y", z: "name", text: "name", fill: "name", dy: -10, textAnchor: "start" }),
      ),
    ],
    // deno-lint-ignore no-explicit-any
  } as any) as unknown as Element;
  svg.setAttribute("xmlns", "http://www.w3.org/2000/svg");
  // Plot's class names carry a random suffix; fix them so reruns on the same data give the same text
  return svg.outerHTML.replace(/plot-[0-9a-f]{6}/g, "plot-ddimlab");
}

/** Where a section puts its figures: returns the Markdown that shows one. */
export interface Writer {
  figure(name: string, svg: string, caption: string): string;
}

/** The Table 1 analogue as Markdown: tables, figures and the ordering findings. */
export function sectionQuality(r: QualityResult, w: Writer): string {
  const variants = [...new Set(r.rows.map((row) => row.variant))];
  const cell = (variant: string, steps: number, pick: (row: QualityResult["rows"][number]) => string) => {
    const row = r.rows.find((x) => x.variant === variant && x.steps === steps);
    return row ? pick(row) : "-";
  };
  const swdTable = markdownTable(
    ["variant", ...r.steps.map((s) => `S = ${s}`)],
    variants.map((v) => [
      v,
      ...r.steps.map((s) => cell(v, s, (x) => `${formatNumber(x.swd)} ± ${formatNumber(x.swdError, 2)}`)),
    ]),
  );
  const llTable = markdownTable(
    ["variant", ...r.steps.map((s) => `S = ${s}`)],
    variants.map((v) => [
      v,
      ...r.steps.map((s) =>
        cell(
          v,
          s,
          (x) => `${formatNumber(x.logLikelihoodGap)} ± ${formatNumber(x.logLikelihoodGapError, 2)}`,
        )
      ),
    ]),
  );
  const paperTable = markdownTable(
    ["variant", ...r.paper.steps.map((s) => `S = ${s}`)],
    r.paper.rows.map((row) => [row.variant, ...row.fid.map((f) => String(f))]),
  );
  const swdFigure = w.figure(
    "quality_swd",
    linePlot(
      [
        ...variants.map((v) => ({
          name: v,
          points: r.rows.filter((x) => x.variant === v).map((x) => [x.steps, x.swd] as const),
        })),
        {
          name: "noise floor",
          points: r.steps.map((s) => [s, r.floor.swd] as const),
          dashed: true,
        },
      ],
      { xLabel: "steps S", yLabel: "sliced Wasserstein distance to exact samples", logX: true, logY: true },
    ),
    "Sliced Wasserstein distance to fresh exact samples against S, one line per variant (dashed: the distance " +
      "between two independent exact sample sets of the same size, the metric's noise floor).",
  );
  const llFigure = w.figure(
    "quality_loglik",
    linePlot(
      variants.map((v) => ({
        name: v,
        points: r.rows.filter((x) => x.variant === v).map((x) => [x.steps, Math.abs(x.logLikelihoodGap)] as const),
      })),
      { xLabel: "steps S", yLabel: "|log-likelihood gap| (nats per dimension)", logX: true, logY: true },
    ),
    "Absolute gap between the mean log-likelihood per dimension of generated and exact samples under the true " +
      "mixture.",
  );
  return [
    r.description,
    "",
    `Model \`${r.model}\` (${r.dimensions} dimensions), ${r.samples} samples per cell, ${r.projections} random ` +
    `directions for the sliced Wasserstein distance; all variants start from the same x_T (seed ${r.seed}).`,
    "",
    "**Sliced Wasserstein distance to exact samples** (± standard error over directions; lower is better). " +
    `Noise floor (two independent exact sets of ${r.samples}): ${formatNumber(r.floor.swd)} ± ` +
    `${formatNumber(r.floor.swdError, 2)}.`,
    "",
    swdTable,
    "",
    swdFigure,
    "",
    "**Mean log-likelihood gap**, E_gen[log p(x)] − E_exact[log p(x)] in nats per dimension under the true mixture " +
    `(exact samples: ${formatNumber(r.floor.exactLogLikelihoodPerDim, 5)} ± ` +
    `${formatNumber(r.floor.exactLogLikelihoodError, 2)}). Negative: samples lie where the data is less likely ` +
    "(left-over noise); positive: samples are more concentrated than the data (over-smoothed), so only the size " +
    "of the gap measures quality.",
    "",
    llTable,
    "",
    llFigure,
    "",
    "**The paper's Table 1** (CIFAR-10 FID, arXiv 2010.02502; lower is better), for comparison of the ordering:",
    "",
    paperTable,
    "",
    "**Does the paper's ordering hold here?**",
    "",
    ...r.ordering.map((line) => `- ${line}`),
  ].join("\n");
}

/** The Table 2 analogue as Markdown: the table, the figure and the notes. */
export function sectionReconstruction(r: ReconstructionBenchResult, w: Writer): string {
  const table = markdownTable(
    ["S", ...r.rows.map((x) => String(x.steps))],
    [
      [
        "MSE, exact mixture samples",
        ...r.rows.map((x) => `${formatNumber(x.mse, 2)} ± ${formatNumber(x.mseError, 1)}`),
      ],
      ["PSNR (dB), exact mixture samples", ...r.rows.map((x) => formatNumber(x.psnr, 3))],
      [
        "MSE, images rendered by the data set",
        ...r.rows.map((x) => `${formatNumber(x.mseDrawn, 2)} ± ${formatNumber(x.mseDrawnError, 1)}`),
      ],
      ["paper, CIFAR-10 (Table 2)", ...r.rows.map((x) => (x.paper === undefined ? "-" : String(x.paper)))],
      ["seconds (invert + reconstruct)", ...r.rows.map((x) => formatNumber(x.seconds, 2))],
    ],
  );
  const figure = w.figure(
    "reconstruction",
    linePlot(
      [
        { name: "exact samples", points: r.rows.map((x) => [x.steps, x.mse] as const) },
        { name: "rendered images", points: r.rows.map((x) => [x.steps, x.mseDrawn] as const) },
        {
          name: "paper (CIFAR-10)",
          points: r.rows.filter((x) => x.paper !== undefined).map((x) => [x.steps, x.paper as number] as const),
          dashed: true,
        },
      ],
      { xLabel: "steps S", yLabel: "reconstruction MSE per dimension on [0, 1]", logX: true, logY: true },
    ),
    "Reconstruction error of DDIM inversion followed by DDIM sampling (eta = 0), against S; dashed: the DDIM " +
      "paper's Table 2.",
  );
  return [r.description, "", table, "", figure, "", ...r.notes.map((line) => `- ${line}`)].join("\n");
}

function sectionConvergence(r: ConvergenceResult, w: Writer): string {
  const table = markdownTable(
    ["S", ...r.rows.map((x) => String(x.steps))],
    [
      ["RMS global error", ...r.rows.map((x) => formatNumber(x.error, 3))],
      ["max abs error", ...r.rows.map((x) => formatNumber(x.maxError, 3))],
    ],
  );
  const fitted = r.rows.filter((x) => x.steps >= r.tailFit.fromSteps)
    .map((x) => [x.steps, r.tailFit.constant * x.steps ** -r.tailFit.order] as const);
  const figure = w.figure(
    "convergence",
    linePlot(
      [
        { name: "DDIM eta = 0", points: r.rows.map((x) => [x.steps, x.error] as const) },
        { name: `fit S >= ${r.tailFit.fromSteps}, order ${r.tailFit.order.toFixed(2)}`, points: fitted, dashed: true },
      ],
      { xLabel: "steps S", yLabel: "RMS error against the exact ODE solution", logX: true, logY: true },
    ),
    "Global error of DDIM (eta = 0) at x_0 against the exact probability-flow ODE solution of the single-Gaussian " +
      "model, with the least-squares power law.",
  );
  return [
    r.description,
    "",
    table,
    "",
    `Fitted order p = ${r.fit.order.toFixed(3)} over S in [${r.fit.fromSteps}, ${r.fit.toSteps}] (error ≈ ` +
    `${formatNumber(r.fit.constant)} S^-p, R² = ${r.fit.rSquared.toFixed(4)}); over S in [${r.tailFit.fromSteps}, ` +
    `${r.tailFit.toSteps}]: p = ${r.tailFit.order.toFixed(3)} (R² = ${r.tailFit.rSquared.toFixed(4)}).`,
    "",
    figure,
    "",
    ...r.notes.map((line) => `- ${line}`),
  ].join("\n");
}

function sectionSolvers(r: SolversResult, w: Writer): string {
  const parts: string[] = [r.description];
  for (const problem of [...new Set(r.errors.map((x) => x.problem))]) {
    const rows = r.errors.filter((x) => x.problem === problem);
    const names = [...new Set(rows.map((x) => x.solver))];
    const budgets = [...new Set(rows.map((x) => x.nfe))].sort((a, b) => a - b);
    const table = markdownTable(
      ["sampler", ...budgets.map((n) => `NFE ${n}`), "fitted order"],
      names.map((name) => [
        name,
        ...budgets.map((n) => {
          const row = rows.find((x) => x.solver === name && x.nfe === n);
          return row ? formatNumber(row.error, 3) : "";
        }),
        r.orders[problem]?.[name] ? r.orders[problem][name].order.toFixed(2) : "",
      ]),
    );
    const figure = w.figure(
      `solvers_${problem}`,
      linePlot(
        names.map((name) => ({
          name,
          points: rows.filter((x) => x.solver === name).map((x) => [x.nfe, x.error] as const),
        })),
        {
          xLabel: "model evaluations (NFE)",
          yLabel: "RMS error against the exact ODE solution",
          logX: true,
          logY: true,
        },
      ),
      `Global error at the end of sampling against the exact probability-flow ODE solution, ${problem}.`,
    );
    parts.push("", `Global error on ${problem}:`, "", table, "", figure);
  }
  const qualityTable = markdownTable(
    ["sampler", "NFE", "S", "log-likelihood gap per dim", "standard error"],
    r.quality.map((x) => [
      x.solver,
      String(x.nfe),
      String(x.steps),
      formatNumber(x.logLikelihoodGap, 3),
      formatNumber(x.logLikelihoodGapError, 2),
    ]),
  );
  parts.push("", "Learned model, Table 1 metric:", "", qualityTable);
  return parts.join("\n");
}

function sectionEndToEnd(r: EndToEndResult): string {
  const table = markdownTable(
    ["model", "sampler", "batch", "steps", "steps timed", "s per step", "images per second", "wall s"],
    r.rows.map((x) => [
      x.model,
      x.sampler,
      String(x.batch),
      String(x.steps),
      String(x.timedSteps),
      formatNumber(x.secondsPerStep, 3),
      formatNumber(x.imagesPerSecond, 3),
      formatNumber(x.seconds, 3),
    ]),
  );
  return [r.description, "", table, "", ...r.notes.map((line) => `- ${line}`)].join("\n");
}

/** Render what a section's benchmark returned: its own markdown if it has one, else a table or JSON. */
function sectionGeneric(result: unknown): string {
  if (typeof result === "string") return result;
  if (result && typeof result === "object") {
    const record = result as Record<string, unknown>;
    if (typeof record.markdown === "string") return record.markdown;
    const rows = Array.isArray(result) ? result : Array.isArray(record.rows) ? record.rows : undefined;
    if (rows && rows.length > 0 && rows.every((x) => x && typeof x === "object")) {
      const header = [...new Set(rows.flatMap((x) => Object.keys(x as object)))];
      const body = rows.map((x) =>
        header.map((h) => {
          const value = (x as Record<string, unknown>)[h];
          // a number the benchmark could not measure (NaN: no reference for that row) is left blank
          if (typeof value === "number") return Number.isNaN(value) ? "" : formatNumber(value, 4);
          return String(value ?? "");
        })
      );
      const rest = Array.isArray(result)
        ? {}
        : Object.fromEntries(Object.entries(record).filter(([k]) => k !== "rows"));
      const extra = Object.keys(rest).length > 0 ? `\n\n\`\`\`json\n${JSON.stringify(rest, null, 2)}\n\`\`\`` : "";
      return markdownTable(header, body) + extra;
    }
  }
  return "```json\n" + JSON.stringify(result, null, 2) + "\n```";
}

interface Plan {
  name: string;
  title: string;
  /** The benchmark's module, imported only when its section runs (a literal path, so tools can follow it). */
  load: () => Promise<Record<string, unknown>>;
  exportName: string;
  render: (result: unknown, w: Writer) => string;
  /** A speed section: run before the quality sections, whose large heaps would slow its micro-timings. */
  timing?: boolean;
}

const plans: Plan[] = [
  {
    name: "quality",
    title: "Sample quality against steps and eta (Table 1 analogue)",
    load: () => import("./quality.ts"),
    exportName: "benchQuality",
    render: (r, w) => sectionQuality(r as QualityResult, w),
  },
  {
    name: "reconstruction",
    title: "Reconstruction error of DDIM inversion (Table 2 analogue)",
    load: () => import("./reconstruction.ts"),
    exportName: "benchReconstruction",
    render: (r, w) => sectionReconstruction(r as ReconstructionBenchResult, w),
  },
  {
    name: "convergence",
    title: "Convergence order of DDIM (eta = 0) against the exact ODE solution",
    load: () => import("./convergence.ts"),
    exportName: "benchConvergence",
    render: (r, w) => sectionConvergence(r as ConvergenceResult, w),
  },
  {
    name: "solvers",
    title: "DDIM is Euler: samplers against the exact ODE solution",
    load: () => import("./solvers.ts"),
    exportName: "benchSolvers",
    render: (r, w) => sectionSolvers(r as SolversResult, w),
  },
  {
    name: "schedulers",
    timing: true,
    title: "Scheduler step time",
    load: () => import("./schedulers.ts"),
    exportName: "benchSchedulers",
    render: (r) => sectionGeneric(r),
  },
  {
    name: "unet",
    timing: true,
    title: "UNet forward time",
    load: () => import("./unet.ts"),
    exportName: "benchUNet",
    render: (r) => sectionGeneric(r),
  },
  {
    name: "builtins",
    timing: true,
    title: "Embedded models",
    load: () => import("./builtin_models.ts"),
    exportName: "benchBuiltins",
    render: (r) => sectionGeneric(r),
  },
  {
    name: "end_to_end",
    timing: true,
    title: "End-to-end sampling speed",
    load: () => import("./end_to_end.ts"),
    exportName: "benchEndToEnd",
    render: (r) => sectionEndToEnd(r as EndToEndResult),
  },
];

function argValue(args: readonly string[], flag: string): string | undefined {
  const index = args.indexOf(flag);
  if (index < 0) return undefined;
  const value = args[index + 1];
  if (value === undefined || value.startsWith("--")) throw new Error(`${flag} needs a value`);
  return value;
}

/**
 * Run the benchmarks and write the page.
 *
 * @param args command-line flags (`--quick`, `--only a,b`, `--out DIR`)
 * @returns the path of the written page
 */
export async function runBenchmarks(args: readonly string[]): Promise<string> {
  const known = new Set(["--quick", "--only", "--out"]);
  for (const [i, arg] of args.entries()) {
    if (arg.startsWith("--") && !known.has(arg)) throw new Error(`Unknown flag ${arg}; use --quick, --only, --out`);
    if (!arg.startsWith("--") && !["--only", "--out"].includes(args[i - 1])) {
      throw new Error(`Unexpected argument ${arg}`);
    }
  }
  const quick = args.includes("--quick");
  const only = argValue(args, "--only")?.split(",").map((x) => x.trim());
  for (const name of only ?? []) {
    if (!plans.some((p) => p.name === name)) {
      throw new Error(`Unknown section ${name}; choose from ${plans.map((p) => p.name).join(", ")}`);
    }
  }
  const outDir = new URL(`${argValue(args, "--out") ?? "docs"}/`, new URL(`file://${process.cwd()}/`));
  const figureDir = new URL("benchmarks/", outDir);
  rmSync(figureDir, { recursive: true, force: true });
  mkdirSync(figureDir, { recursive: true });
  const stamp = machineStamp();
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const figures: string[] = [];
  const writer: Writer = {
    figure(name, svg, caption) {
      writeFileSync(new URL(`${name}.svg`, figureDir), svg);
      figures.push(`${name}.svg`);
      return `![${caption}](benchmarks/${name}.svg)\n\n*${caption}*`;
    },
  };
  const sections: Section[] = [];
  const started = performance.now();
  // Speed sections run first, on a small heap; the page keeps the order of `plans`.
  const runOrder = [...plans.filter((p) => p.timing), ...plans.filter((p) => !p.timing)];
  for (const plan of runOrder) {
    if (only && !only.includes(plan.name)) continue;
    log(`[bench] ${plan.name} ...`);
    const t0 = performance.now();
    let markdown: string;
    try {
      const module = await plan.load();
      const fn = module[plan.exportName];
      if (typeof fn !== "function") throw new Error(`The ${plan.name} benchmark does not export ${plan.exportName}`);
      const result = await fn({ quick, log: (line: string) => log(`  ${line}`) });
      markdown = plan.render(result, writer);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      log(`[bench] ${plan.name} failed: ${message}`);
      markdown = `Not run: ${message.split("\n")[0]}`;
    }
    const seconds = (performance.now() - t0) / 1000;
    log(`[bench] ${plan.name} done in ${seconds.toFixed(1)} s`);
    sections.push({ name: plan.name, title: plan.title, seconds, markdown });
  }
  sections.sort((a, b) => plans.findIndex((p) => p.name === a.name) - plans.findIndex((p) => p.name === b.name));
  const total = (performance.now() - started) / 1000;
  const page = [
    "# Benchmarks",
    "",
    `Generated by \`npm run bench${quick ? " -- --quick" : ""}\` (bench/run.ts) on ${stamp.date}; every number and ` +
    "figure below comes from that run. Do not edit by hand: rerun the command.",
    "",
    quick
      ? "**Quick mode**: small step counts and sample sizes; the quality figures are noisy. `npm run bench` runs " +
        "the full set."
      : "Full mode. `npm run bench -- --quick` runs a smaller, noisier set in a couple of minutes.",
    "",
    markdownTable(["machine", ""], Object.entries(stamp).map(([k, v]) => [k, v])),
    "",
    markdownTable(
      ["section", "wall time (s)"],
      [...sections.map((s) => [s.name, s.seconds.toFixed(1)]), ["total", total.toFixed(1)]],
    ),
    "",
    ...sections.flatMap((s) => [`## ${s.title}`, "", s.markdown, ""]),
  ].join("\n");
  const pagePath = new URL("benchmarks.md", outDir);
  writeFileSync(pagePath, page);
  log(`[bench] wrote ${pagePath.pathname} and ${figures.length} figures in ${total.toFixed(1)} s`);
  return pagePath.pathname;
}

if (import.meta.main) {
  await runBenchmarks(process.argv.slice(2));
}
