/**
 * Plots of diffusion sampling with Observable Plot, rendered on a server-side DOM (linkedom), so the same call shows
 * a figure in a Deno notebook and writes an SVG or a PNG from a script.
 *
 * | paper          | code                | meaning                                              |
 * |----------------|---------------------|------------------------------------------------------|
 * | alphaBar_t     | `plotSchedule`      | curves over the training timesteps t = 0 .. T-1      |
 * | sigma_t(eta)   | `plotEtaCurves`     | one curve per eta, eq. (16)                          |
 * | tau            | `plotTimesteps`     | timestep sub-sequences tau_1 < ... < tau_S on one axis|
 * | x_t, x_0(x_t)  | `plotTrajectories2D`| paths of 2-D samples through the sampling loop       |
 * | x_t[pixel]     | `plotPixelTraces`   | chosen pixels of x_t (or predicted x0) against step i |
 *
 * Every helper takes what the samplers yield, `{ i, t, x, predX0 }` step records, or plain arrays, plus an optional
 * `document` (a fresh linkedom document is made when it is left out). Each returns an `<svg>` element; turn it
 * into text with `svgString`, into PNG bytes with `svgToPng`, or write either with `saveFigure`. Figures carry no
 * random ids, so the same data always gives the same SVG text.
 *
 * @module
 */
import * as Plot from "@observablehq/plot";
import { parseHTML } from "linkedom";
import { Tensor } from "../core/tensor.ts";

/** A step of a sampling loop, as the samplers yield it: step index i, timestep t, x_t, and optionally predicted x0. */
export interface StepRecord {
  /** The step index, 0 for the first (noisiest) step. */
  readonly i: number;
  /** The training timestep of this step. */
  readonly t: number;
  /** The sample after this step (x_{t-1}), batch-first. */
  readonly x: Tensor;
  /** The predicted x0 at this step, eq. (12). */
  readonly predX0?: Tensor;
}

/** A step whose sample is a plain array of 2-D points instead of a tensor (for hand-made trajectories). */
export interface PointStep {
  /** The step index. */
  readonly i?: number;
  /** The timestep. */
  readonly t?: number;
  /** One [x, y] point per sample. */
  readonly x: readonly (readonly number[])[] | Tensor;
  /** One predicted-x0 [x, y] point per sample. */
  readonly predX0?: readonly (readonly number[])[] | Tensor;
}

/**
 * A rendered figure: what Observable Plot's `plot` returns, here always a bare `<svg>` element (a linkedom element
 * outside a browser). Typed through Plot's declarations, not the DOM's globals, so that a project without the "dom"
 * lib (Deno's default) type-checks against this package.
 */
export type Figure = ReturnType<typeof Plot.plot>;

/** The document Observable Plot draws into: a DOM `Document` (a linkedom one outside a browser). */
export type PlotDocument = NonNullable<Plot.PlotOptions["document"]>;

/** Options every plot helper accepts. */
export interface FigureOptions {
  /** The DOM document to render with (default: a fresh linkedom document). */
  document?: PlotDocument;
  /** Width in pixels (default 640). */
  width?: number;
  /** Height in pixels (default depends on the plot). */
  height?: number;
  /** A title drawn above the plot area. */
  title?: string;
  /** The horizontal axis label. */
  xLabel?: string;
  /** The vertical axis label. */
  yLabel?: string;
  /** Room in pixels left of the plot area for the y tick labels (default: Plot's 40; long log-axis labels need more). */
  marginLeft?: number;
}

/** Options of `plotCurves` and the helpers built on it. */
export interface CurveOptions extends FigureOptions {
  /** Shared horizontal coordinates of every curve (default 0, 1, 2, ...). */
  x?: ArrayLike<number>;
  /** Scale of the horizontal axis (default "linear"). */
  xType?: "linear" | "log";
  /** Scale of the vertical axis (default "linear"). */
  yType?: "linear" | "log";
  /** Draw a dot at each point as well as the line (default false). */
  dots?: boolean;
  /** Run the horizontal axis from right to left, e.g. timesteps with T on the left (default false). */
  reverse?: boolean;
  /** The vertical axis range [low, high], e.g. [0, max] so that it starts at 0 (default: the data's extent). */
  yDomain?: readonly [number, number];
  /** Horizontal reference lines by label, e.g. `{ "exact samples": 1.57 }`, drawn dashed and labelled. */
  rules?: Readonly<Record<string, number>>;
  /** Error bars by curve name: half-widths, one per point; the bar spans y - e to y + e. */
  errors?: Readonly<Record<string, ArrayLike<number>>>;
}

/**
 * A fresh server-side DOM document to render figures with.
 *
 * document = parseHTML("<!DOCTYPE html><html><body></body></html>").document
 *
 * @returns a linkedom document
 * @example
 * ```ts
 * import { createDocument, plotCurves, svgString } from "../../mod.ts";
 * const svg = plotCurves({ y: [1, 2, 3] }, { document: createDocument() });
 * if (!svgString(svg).startsWith("<svg")) throw new Error("the figure is not an SVG element");
 * ```
 */
export function createDocument(): PlotDocument {
  // linkedom types its window with the DOM's globals, which a project without the "dom" lib lacks
  const window = parseHTML("<!DOCTYPE html><html><body></body></html>") as unknown as { document: PlotDocument };
  return window.document;
}

/**
 * Line plot of named curves on one pair of axes, each labelled at its right end.
 *
 * One line per name: (x_k, series[name][k]) for k = 0 .. n-1.
 *
 * @param series curves by name; every curve has the length of `options.x` when that is given
 * @param options axes, scales and rendering options
 * @returns the `<svg>` figure
 * @example
 * ```ts
 * import { plotCurves, svgString } from "../../mod.ts";
 * const svg = plotCurves({ "1 - t": [1, 0.5, 0] }, { x: [0, 0.5, 1], xLabel: "t" });
 * const text = svgString(svg);
 * if (!text.startsWith("<svg") || !text.includes("1 - t")) throw new Error("expected an SVG naming its curve");
 * // timesteps with T on the left, error bars, and a labelled reference level
 * const annotated = svgString(plotCurves({ mean: [0.9, 0.4, 0.1] }, {
 *   x: [999, 500, 0],
 *   reverse: true,
 *   errors: { mean: [0.05, 0.04, 0.02] },
 *   rules: { "exact level": 0.1 },
 * }));
 * if (!annotated.includes("exact level")) throw new Error("expected the reference level's label");
 * ```
 */
export function plotCurves(series: Readonly<Record<string, ArrayLike<number>>>, options: CurveOptions = {}): Figure {
  const names = Object.keys(series);
  if (names.length === 0) throw new RangeError("plotCurves needs at least one curve, got none");
  const rows: { x: number; y: number; name: string }[] = [];
  for (const name of names) {
    const ys = series[name];
    checkNumbers(ys, `curve "${name}"`);
    const xs = options.x ?? null;
    if (xs !== null && xs.length !== ys.length) {
      throw new RangeError(`Curve "${name}" has ${ys.length} points but options.x has ${xs.length}`);
    }
    for (let k = 0; k < ys.length; k++) rows.push({ x: xs === null ? k : xs[k], y: ys[k], name });
  }
  if (options.x) checkNumbers(options.x, "options.x");
  const bars = errorBars(rows, options.errors ?? {});
  const rules = Object.entries(options.rules ?? {}).map(([name, y]) => ({ name, y }));
  checkNumbers(rules.map((r) => r.y), "options.rules");
  const height = options.height ?? 320;
  const labels = endLabels(
    rows,
    names,
    12 / Math.max(1, height - 50),
    options.yType === "log",
    options.reverse,
    options.yDomain,
  );
  const marks: Plot.Markish[] = [];
  if (rules.length > 0) {
    // reference levels: dashed, grey, labelled just above the line at the left edge of the plot area
    marks.push(
      Plot.ruleY(rules, { y: "y", stroke: "#777", strokeDasharray: "4,3" }),
      Plot.text(rules, { y: "y", text: "name", frameAnchor: "left", dx: 4, dy: -6, textAnchor: "start", fill: "#555" }),
    );
  }
  marks.push(
    Plot.lineY(rows, { x: "x", y: "y", stroke: "name", z: "name", strokeWidth: 1.5 }),
    Plot.text(labels, { x: "x", y: "y", text: "name", fill: "name", dx: 5, textAnchor: "start" }),
  );
  if (bars.length > 0) marks.push(Plot.ruleX(bars, { x: "x", y1: "y1", y2: "y2", stroke: "name", strokeWidth: 1.5 }));
  if (options.dots) marks.push(Plot.dot(rows, { x: "x", y: "y", fill: "name", r: 2.5 }));
  const longest = Math.max(...names.map((n) => n.length));
  return render(options, {
    height,
    marginRight: Math.min(220, 16 + 6 * longest),
    // a log axis labels its ticks 0.0001, 1e-7 ...: room for six characters
    marginLeft: options.yType === "log" ? 56 : undefined,
    x: {
      label: options.xLabel ?? null,
      type: options.xType ?? "linear",
      reverse: options.reverse ?? false,
      ...logTicks(options.xType),
    },
    y: {
      label: options.yLabel ?? null,
      type: options.yType ?? "linear",
      grid: true,
      ...(options.yDomain ? { domain: [...options.yDomain] } : {}),
      ...logTicks(options.yType),
    },
    color: { domain: names, range: palette(names.length) },
    marks,
  });
}

/**
 * Schedule curves over the training timesteps, such as alphaBar_t, sqrt(alphaBar_t) and sqrt(1 - alphaBar_t).
 *
 * alphaBar_t = prod_{s <= t} (1 - beta_s), plotted against t = 0 .. T-1 (or against `options.x`).
 *
 * @param curves curves by name, one value per training timestep
 * @param options axes and rendering options (the x label defaults to "timestep t")
 * @returns the `<svg>` figure
 * @example
 * ```ts
 * import { plotSchedule, svgString } from "../../mod.ts";
 * const betas = Array.from({ length: 1000 }, (_, t) => 1e-4 + (0.02 - 1e-4) * t / 999);
 * let prod = 1;
 * const alphaBar = betas.map((b) => (prod *= 1 - b));
 * const svg = plotSchedule({ alphaBar_t: alphaBar });
 * if (!svgString(svg).includes("alphaBar_t")) throw new Error("the curve's name is missing");
 * ```
 */
export function plotSchedule(curves: Readonly<Record<string, ArrayLike<number>>>, options: CurveOptions = {}): Figure {
  return plotCurves(curves, { xLabel: "timestep t", ...options });
}

/**
 * One curve per eta, such as sigma_t(eta) of eq. (16), labelled "eta = ...".
 *
 * sigma_t(eta) = eta * sqrt((1 - alphaBar_prev) / (1 - alphaBar_t)) * sqrt(1 - alphaBar_t / alphaBar_prev)
 *
 * @param curvesByEta the curve of each eta, as a Map from eta or a record keyed by eta's text
 * @param options axes and rendering options (the x label defaults to "timestep t")
 * @returns the `<svg>` figure
 * @example
 * ```ts
 * import { plotEtaCurves, svgString } from "../../mod.ts";
 * const svg = plotEtaCurves(new Map([[0, [0, 0]], [1, [0.1, 0.2]]]), { x: [10, 20] });
 * if (!svgString(svg).startsWith("<svg")) throw new Error("the figure is not an SVG element");
 * ```
 */
export function plotEtaCurves(
  curvesByEta: ReadonlyMap<number, ArrayLike<number>> | Readonly<Record<string, ArrayLike<number>>>,
  options: CurveOptions = {},
): Figure {
  const entries = curvesByEta instanceof Map ? [...curvesByEta.entries()] : Object.entries(curvesByEta);
  const series: Record<string, ArrayLike<number>> = {};
  for (const [eta, curve] of entries) series[`eta = ${eta}`] = curve;
  return plotCurves(series, { xLabel: "timestep t", ...options });
}

/** Options of `plotTimesteps`. */
export interface TimestepOptions extends FigureOptions {
  /** The number of training timesteps T; the axis runs over [0, T - 1] (default: the largest timestep + 1). */
  numTrainTimesteps?: number;
}

/**
 * Timestep sub-sequences tau (leading, trailing, linspace, quadratic ...) drawn as ticks on one shared axis.
 *
 * One row per sub-sequence, one tick per timestep tau_i, 0 <= tau_i < T.
 *
 * @param subsequences timesteps by name
 * @param options the axis range and rendering options
 * @returns the `<svg>` figure
 * @example
 * ```ts
 * import { plotTimesteps, svgString } from "../../mod.ts";
 * const svg = plotTimesteps({ leading: [900, 800, 700], trailing: [999, 899, 799] }, { numTrainTimesteps: 1000 });
 * const text = svgString(svg);
 * if (!text.includes("leading") || !text.includes("trailing")) throw new Error("both spacings should be named");
 * ```
 */
export function plotTimesteps(
  subsequences: Readonly<Record<string, ArrayLike<number>>>,
  options: TimestepOptions = {},
): Figure {
  const names = Object.keys(subsequences);
  if (names.length === 0) throw new RangeError("plotTimesteps needs at least one sub-sequence, got none");
  const rows: { t: number; name: string }[] = [];
  for (const name of names) {
    const ts = subsequences[name];
    checkNumbers(ts, `sub-sequence "${name}"`);
    for (let k = 0; k < ts.length; k++) rows.push({ t: ts[k], name });
  }
  const maxT = Math.max(...rows.map((r) => r.t));
  const numTrain = options.numTrainTimesteps ?? maxT + 1;
  if (!Number.isInteger(numTrain) || numTrain <= maxT) {
    throw new RangeError(`numTrainTimesteps must be an integer above the largest timestep ${maxT}, got ${numTrain}`);
  }
  const longest = Math.max(...names.map((n) => n.length));
  const counts = names.map((name) => ({ name, label: `${subsequences[name].length} steps` }));
  return render(options, {
    height: options.height ?? 40 + 36 * names.length,
    marginLeft: Math.min(220, 16 + 6 * longest),
    marginRight: 60,
    x: { label: options.xLabel ?? "timestep t", domain: [0, numTrain - 1] },
    y: { label: options.yLabel ?? null, domain: names },
    color: { domain: names, range: palette(names.length) },
    marks: [
      Plot.ruleY(names, { stroke: "#ddd" }),
      Plot.tickX(rows, { x: "t", y: "name", stroke: "name", strokeWidth: 1.5 }),
      Plot.text(counts, { y: "name", text: "label", frameAnchor: "right", dx: 56, textAnchor: "end" }),
    ],
  });
}

/** Options of `plotTrajectories2D`. */
export interface TrajectoryOptions extends FigureOptions {
  /** Which tensor of each step to follow (default "x"). */
  field?: "x" | "predX0";
  /** Draw at most this many paths (default 64), the first ones of the batch. */
  maxPaths?: number;
  /** Points drawn faintly behind the paths, e.g. samples of the data distribution. */
  data?: readonly (readonly number[])[] | Tensor;
  /** The starting points x_T, drawn as hollow dots when given. */
  start?: readonly (readonly number[])[] | Tensor;
}

/**
 * Paths of 2-D samples through a sampling loop; several named runs are drawn side by side with shared axes.
 *
 * Path of sample b: x_T[b], x_{tau_S-1}[b], ..., x_0[b], each a point (x, y).
 *
 * @param runs the steps of one run, or runs by name (e.g. `{ DDIM: ddimSteps, DDPM: ddpmSteps }`)
 * @param options what to follow, how many paths, and rendering options
 * @returns the `<svg>` figure
 * @example
 * ```ts
 * import { plotTrajectories2D, svgString } from "../../mod.ts";
 * const steps = [{ i: 0, t: 999, x: [[1, 1], [-1, 0]] }, { i: 1, t: 0, x: [[0.5, 0.4], [-0.6, 0.1]] }];
 * const svg = plotTrajectories2D({ DDIM: steps });
 * if (!svgString(svg).startsWith("<svg")) throw new Error("the figure is not an SVG element");
 * ```
 */
export function plotTrajectories2D(
  runs: readonly (StepRecord | PointStep)[] | Readonly<Record<string, readonly (StepRecord | PointStep)[]>>,
  options: TrajectoryOptions = {},
): Figure {
  const named: Record<string, readonly (StepRecord | PointStep)[]> = Array.isArray(runs)
    ? { "": runs as readonly (StepRecord | PointStep)[] }
    : runs as Readonly<Record<string, readonly (StepRecord | PointStep)[]>>;
  const names = Object.keys(named);
  if (names.length === 0) throw new RangeError("plotTrajectories2D needs at least one run, got none");
  const field = options.field ?? "x";
  const maxPaths = options.maxPaths ?? 64;
  if (!Number.isInteger(maxPaths) || maxPaths < 1) {
    throw new RangeError(`maxPaths must be a positive integer, got ${maxPaths}`);
  }
  const rows: { px: number; py: number; path: number; k: number; run: string }[] = [];
  const ends: { px: number; py: number; run: string }[] = [];
  const starts: { px: number; py: number; run: string }[] = [];
  for (const run of names) {
    const steps = named[run];
    if (steps.length === 0) throw new RangeError(`Run "${run}" has no steps`);
    const startPoints = options.start === undefined ? null : toPoints(options.start, "options.start");
    steps.forEach((step, k) => {
      const value = step[field];
      if (value === undefined) throw new TypeError(`Step ${step.i ?? k} of run "${run}" has no ${field}`);
      const points = toPoints(value, `step ${step.i ?? k} of run "${run}"`);
      const n = Math.min(points.length, maxPaths);
      if (k === 0 && startPoints !== null) {
        for (let b = 0; b < Math.min(startPoints.length, n); b++) {
          rows.push({ px: startPoints[b][0], py: startPoints[b][1], path: b, k: -1, run });
          starts.push({ px: startPoints[b][0], py: startPoints[b][1], run });
        }
      }
      for (let b = 0; b < n; b++) {
        rows.push({ px: points[b][0], py: points[b][1], path: b, k, run });
        if (k === steps.length - 1) ends.push({ px: points[b][0], py: points[b][1], run });
      }
    });
  }
  const facet = names.length > 1 || names[0] !== "";
  const fx = facet ? "run" : undefined;
  const marks: Plot.Markish[] = [];
  if (options.data !== undefined) {
    const cloud = toPoints(options.data, "options.data").flatMap(([px, py]) => names.map((run) => ({ px, py, run })));
    marks.push(Plot.dot(cloud, { x: "px", y: "py", fx, r: 1.2, fill: "#bbb", stroke: null }));
  }
  marks.push(
    Plot.line(rows, {
      x: "px",
      y: "py",
      z: (r: { run: string; path: number }) => `${r.run}/${r.path}`,
      fx,
      stroke: "path",
      strokeOpacity: 0.7,
      strokeWidth: 1,
    }),
    Plot.dot(ends, { x: "px", y: "py", fx, r: 2, fill: "black" }),
  );
  if (starts.length > 0) marks.push(Plot.dot(starts, { x: "px", y: "py", fx, r: 2.5, stroke: "#888" }));
  const width = options.width ?? Math.min(960, 320 * names.length + 40);
  return render({ ...options, width }, {
    height: options.height ?? 340,
    marginTop: facet ? 30 : undefined,
    x: { label: options.xLabel ?? null },
    y: { label: options.yLabel ?? null },
    fx: facet ? { label: null, domain: names } : undefined,
    color: { type: "ordinal", scheme: "tableau10" },
    marks,
  });
}

/** Options of `plotPixelTraces`. */
export interface PixelTraceOptions extends FigureOptions {
  /** Which tensor of each step to trace (default "x"). */
  field?: "x" | "predX0";
  /** Flat element indices within one batch item (default: the centre and quarter points of an image, channels in turn). */
  pixels?: readonly number[];
  /** Which batch item to trace (default 0). */
  batchIndex?: number;
  /** The horizontal axis: the step index i or the timestep t (default "i"). */
  against?: "i" | "t";
  /** Put the largest x on the left (default: true against t, so that sampling reads left to right either way). */
  reverse?: boolean;
}

/**
 * Values of chosen pixels of x_t (or of the predicted x0) against the sampling step.
 *
 * Trace of pixel p: x_{tau_S}[p], ..., x_{tau_1}[p], x_0[p].
 *
 * @param steps the step records of one run (each `x`, or `predX0`, batch-first)
 * @param options which pixels, which batch item, the horizontal axis, and rendering options
 * @returns the `<svg>` figure
 * @example
 * ```ts
 * import { plotPixelTraces, svgString, Tensor } from "../../mod.ts";
 * const steps = [0, 1, 2].map((i) => ({ i, t: 999 - i, x: Tensor.from([i, -i, 2 * i, 0], [1, 1, 2, 2]) }));
 * const svg = plotPixelTraces(steps, { pixels: [0, 1] });
 * if (!svgString(svg).startsWith("<svg")) throw new Error("the figure is not an SVG element");
 * ```
 */
export function plotPixelTraces(steps: readonly StepRecord[], options: PixelTraceOptions = {}): Figure {
  if (steps.length === 0) throw new RangeError("plotPixelTraces needs at least one step, got none");
  const field = options.field ?? "x";
  const against = options.against ?? "i";
  const first = steps[0][field];
  if (!(first instanceof Tensor)) throw new TypeError(`Step ${steps[0].i} has no ${field} tensor`);
  const batch = first.shape[0] ?? 1;
  const perItem = first.size / batch;
  const batchIndex = options.batchIndex ?? 0;
  if (!Number.isInteger(batchIndex) || batchIndex < 0 || batchIndex >= batch) {
    throw new RangeError(`batchIndex must be an integer in [0, ${batch - 1}], got ${batchIndex}`);
  }
  const pixels = options.pixels ?? defaultPixels(first.shape, perItem);
  for (const p of pixels) {
    if (!Number.isInteger(p) || p < 0 || p >= perItem) {
      throw new RangeError(`Pixel index must be an integer in [0, ${perItem - 1}], got ${p}`);
    }
  }
  const series: Record<string, number[]> = {};
  const names = pixels.map((p) => pixelName(p, first.shape));
  for (const name of names) series[name] = [];
  const xs: number[] = [];
  for (const step of steps) {
    const value = step[field];
    if (!(value instanceof Tensor)) throw new TypeError(`Step ${step.i} has no ${field} tensor`);
    if (value.size !== first.size) {
      throw new RangeError(`Step ${step.i} has ${value.size} elements in ${field}, the first step had ${first.size}`);
    }
    xs.push(step[against]);
    pixels.forEach((p, k) => series[names[k]].push(value.data[batchIndex * perItem + p]));
  }
  return plotCurves(series, {
    xLabel: against === "i" ? "step i" : "timestep t",
    yLabel: field === "x" ? "x_t" : "predicted x0",
    reverse: against === "t",
    ...options,
    x: xs,
  });
}

/** Options of `plotHistogram`. */
export interface HistogramOptions extends FigureOptions {
  /** The number of bins (default 40). */
  bins?: number;
  /** Scale of the count axis (default "linear"). */
  yType?: "linear" | "log";
}

/**
 * Histogram of values, such as the per-pixel difference between two images.
 *
 * count_k = #{ v : lo + k * w <= v < lo + (k + 1) * w }
 *
 * @param values the values (a tensor's elements or a plain list)
 * @param options bins, scales and rendering options
 * @returns the `<svg>` figure
 * @example
 * ```ts
 * import { plotHistogram, svgString } from "../../mod.ts";
 * const svg = plotHistogram([0.1, 0.2, 0.2, 0.5], { bins: 4, xLabel: "difference" });
 * if (!svgString(svg).includes("difference")) throw new Error("the axis label is missing");
 * ```
 */
export function plotHistogram(values: ArrayLike<number> | Tensor, options: HistogramOptions = {}): Figure {
  const data = values instanceof Tensor ? values.data : values;
  if (data.length === 0) throw new RangeError("plotHistogram needs at least one value, got none");
  checkNumbers(data, "values");
  const bins = options.bins ?? 40;
  if (!Number.isInteger(bins) || bins < 1) throw new RangeError(`bins must be a positive integer, got ${bins}`);
  // A bar from a count of 0 has no place on a log axis (log 0 = -infinity) and would silently vanish: there the
  // bars start at half a count instead, and the empty bins are left out.
  const log = options.yType === "log";
  return render(options, {
    height: options.height ?? 260,
    x: { label: options.xLabel ?? null },
    y: { label: options.yLabel ?? "count", type: options.yType ?? "linear", grid: true },
    marks: log
      ? [
        Plot.rectY(Array.from(data), {
          ...Plot.binX({ y2: "count", filter: (bin: unknown[]) => bin.length > 0 }, {
            x: (v: number) => v,
            thresholds: bins,
          }),
          y1: 0.5,
          fill: "#4e79a7",
        }),
      ]
      : [
        Plot.rectY(Array.from(data), {
          ...Plot.binX({ y: "count" }, { x: (v: number) => v, thresholds: bins }),
          fill: "#4e79a7",
        }),
        Plot.ruleY([0]),
      ],
  });
}

/**
 * The figure's SVG text, with the SVG namespace declared so it stands alone as a `.svg` file.
 *
 * @param figure a figure from one of the plot helpers
 * @returns the SVG markup
 * @example
 * ```ts
 * import { plotCurves, svgString } from "../../mod.ts";
 * const text = svgString(plotCurves({ y: [0, 1] }));
 * if (!text.includes('xmlns="http://www.w3.org/2000/svg"')) throw new Error("a standalone SVG declares its namespace");
 * ```
 */
export function svgString(figure: Figure): string {
  const tag = (figure as { tagName?: string }).tagName;
  if (typeof tag !== "string" || tag.toLowerCase() !== "svg") {
    throw new TypeError(`svgString needs an <svg> element, got ${tag === undefined ? typeof figure : `<${tag}>`}`);
  }
  if (!figure.getAttribute("xmlns")) figure.setAttribute("xmlns", "http://www.w3.org/2000/svg");
  return figure.outerHTML;
}

/** Options of `svgToPng`. */
export interface PngOptions {
  /** Pixels per SVG unit (default 2). */
  scale?: number;
  /** Background colour painted before the figure (default "white"). */
  background?: string;
}

/**
 * Rasterise a figure (or SVG text) to PNG bytes with @napi-rs/canvas, which draws an SVG loaded as an Image.
 *
 * PNG size = (scale * width) x (scale * height).
 *
 * @param svg a figure or its SVG text
 * @param options resolution and background
 * @returns the PNG file's bytes
 * @example
 * ```ts
 * import { plotCurves, svgToPng } from "../../mod.ts";
 * const png = await svgToPng(plotCurves({ y: [0, 1] }), { scale: 1 });
 * // every PNG file starts with the signature 137 80 78 71 13 10 26 10
 * if (png.slice(0, 8).join() !== "137,80,78,71,13,10,26,10") throw new Error("not a PNG signature");
 * ```
 */
export async function svgToPng(svg: Figure | string, options: PngOptions = {}): Promise<Uint8Array> {
  const scale = options.scale ?? 2;
  if (!(scale > 0) || !Number.isFinite(scale)) throw new RangeError(`scale must be a positive number, got ${scale}`);
  const text = typeof svg === "string" ? svg : svgString(svg);
  if (!/^\s*<svg[\s>]/.test(text)) throw new TypeError(`svgToPng needs SVG markup, got "${text.slice(0, 40)}"`);
  const { createCanvas, Image } = await import("@napi-rs/canvas");
  const image = new Image();
  image.src = new TextEncoder().encode(rasterFriendly(text)) as unknown as Buffer;
  if (!(image.width > 0 && image.height > 0)) throw new Error("The SVG could not be decoded into an image");
  const canvas = createCanvas(Math.round(image.width * scale), Math.round(image.height * scale));
  const context = canvas.getContext("2d");
  context.fillStyle = options.background ?? "white";
  context.fillRect(0, 0, canvas.width, canvas.height);
  context.scale(scale, scale);
  context.drawImage(image, 0, 0);
  return new Uint8Array(await canvas.encode("png"));
}

/**
 * Write a figure to a file: SVG text for a `.svg` path, PNG bytes for a `.png` path.
 *
 * @param figure a figure from one of the plot helpers
 * @param path where to write; its extension picks the format
 * @param options resolution and background of a PNG
 * @returns the path written
 * @example
 * ```ts
 * import { plotCurves, saveFigure } from "../../mod.ts";
 * import { mkdtempSync, readFileSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * const path = join(mkdtempSync(join(tmpdir(), "ddimlab-")), "curve.svg");
 * await saveFigure(plotCurves({ y: [0, 1] }), path);
 * if (!readFileSync(path, "utf8").startsWith("<svg")) throw new Error("the file is not an SVG");
 * ```
 */
export async function saveFigure(figure: Figure, path: string, options: PngOptions = {}): Promise<string> {
  const { writeFile } = await import("node:fs/promises");
  const lower = path.toLowerCase();
  if (lower.endsWith(".svg")) await writeFile(path, svgString(figure));
  else if (lower.endsWith(".png")) await writeFile(path, await svgToPng(figure, options));
  else throw new RangeError(`saveFigure writes .svg or .png files, got "${path}"`);
  return path;
}

// Render with Plot, adding the title as a text mark so the result stays a bare <svg> (a Plot legend or caption
// would wrap it in an HTML <figure>, which neither a PNG encoder nor an image/svg+xml output can take).
function render(options: FigureOptions, plotOptions: Plot.PlotOptions): Figure {
  const marks = [...(plotOptions.marks ?? [])];
  const hasFacets = plotOptions.fx !== undefined;
  // The title gets its own line, below the y-axis label that Plot draws at the very top of the figure.
  const marginTop = (plotOptions.marginTop ?? 20) + (options.title !== undefined ? 30 : 0);
  if (options.title !== undefined) {
    marks.push(Plot.text([options.title], {
      frameAnchor: "top",
      dy: -(marginTop - 17),
      fontSize: 12,
      fontWeight: "bold",
      facet: hasFacets ? "super" : undefined,
    }));
  }
  const figure = Plot.plot({
    ...plotOptions,
    marks,
    marginTop,
    marginLeft: options.marginLeft ?? plotOptions.marginLeft,
    width: options.width ?? 640,
    document: options.document ?? createDocument(),
  });
  return figure as unknown as Figure;
}

// Each curve's label sits at its rightmost point (its smallest x on a reversed axis), nudged apart vertically so that no two are closer than `gap`
// (a fraction of the value range, about one line of text).
function endLabels(
  rows: readonly { x: number; y: number; name: string }[],
  names: readonly string[],
  gap: number,
  log: boolean,
  reverse = false,
  domain?: readonly [number, number],
): { x: number; y: number; name: string }[] {
  // on a reversed axis the rightmost point is the one with the smallest x
  const further = (x: number, than: number) => (reverse ? x <= than : x >= than);
  const ends = names.map((name) => {
    let end: { x: number; y: number; name: string } | undefined;
    for (const row of rows) if (row.name === name && (end === undefined || further(row.x, end.x))) end = row;
    return end;
  }).filter((end) => end !== undefined).map((end) => ({ ...end }));
  if (ends.length < 2) return ends;
  // On a log axis, spacing is even in log10(y).
  const forward = (y: number) => (log ? Math.log10(y) : y);
  // the gap is a fraction of the axis's range: the data's, or a wider yDomain's
  const ys = [...rows.map((r) => r.y), ...(domain ?? [])].map(forward).filter(Number.isFinite);
  const step = gap * (Math.max(...ys) - Math.min(...ys));
  const sorted = [...ends].sort((a, b) => a.y - b.y);
  for (let k = 1; k < sorted.length; k++) {
    const lowest = forward(sorted[k - 1].y) + step;
    if (forward(sorted[k].y) < lowest) sorted[k].y = log ? 10 ** lowest : lowest;
  }
  return ends;
}

// One vertical bar per point that has an error, from y - e to y + e; every error names a curve and fits it.
function errorBars(
  rows: readonly { x: number; y: number; name: string }[],
  errors: Readonly<Record<string, ArrayLike<number>>>,
): { x: number; y1: number; y2: number; name: string }[] {
  const bars: { x: number; y1: number; y2: number; name: string }[] = [];
  for (const [name, halfWidths] of Object.entries(errors)) {
    const points = rows.filter((r) => r.name === name);
    if (points.length === 0) throw new RangeError(`options.errors names a curve "${name}" that is not plotted`);
    checkNumbers(halfWidths, `errors of "${name}"`);
    if (halfWidths.length !== points.length) {
      throw new RangeError(`Curve "${name}" has ${points.length} points but ${halfWidths.length} errors`);
    }
    points.forEach((p, k) => {
      if (!(halfWidths[k] >= 0) || !Number.isFinite(halfWidths[k])) {
        throw new RangeError(`Errors of "${name}" must be finite and non-negative, got ${halfWidths[k]} at index ${k}`);
      }
      bars.push({ x: p.x, y1: p.y - halfWidths[k], y2: p.y + halfWidths[k], name });
    });
  }
  return bars;
}

// Log axes label their ticks as plain numbers (0.001, 1e-6) rather than with SI prefixes (1m, 1µ).
function logTicks(type: string | undefined): { tickFormat?: string } {
  return type === "log" ? { tickFormat: "~g" } : {};
}

// A colour per curve: Tableau 10, repeated when there are more curves.
function palette(count: number): string[] {
  const tableau = [
    "#4e79a7",
    "#f28e2c",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc949",
    "#af7aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ab",
  ];
  return Array.from({ length: count }, (_, k) => tableau[k % tableau.length]);
}

// Skia's SVG reader takes neither em offsets nor system-ui: turn them into pixels at Plot's 10px font, sans-serif.
function rasterFriendly(svg: string): string {
  return svg
    .replace(
      /\b(x|y|dx|dy)="(-?[\d.]+)em"/g,
      (_, name: string, em: string) => `${name}="${(Number(em) * 10).toFixed(2)}"`,
    )
    .replace(/system-ui,\s*/g, "");
}

// Six pixels spread over an image (centre, then the quarter points), taking the channels in turn; for other shapes,
// six evenly spaced elements.
function defaultPixels(shape: readonly number[], perItem: number): number[] {
  if (shape.length === 4 && shape[2] >= 4 && shape[3] >= 4) {
    const [, channels, height, width] = shape;
    const spots = [[0.5, 0.5], [0.25, 0.25], [0.75, 0.75], [0.25, 0.75], [0.75, 0.25], [0.5, 0.25]];
    return spots.map(([fy, fx], k) =>
      (k % channels) * height * width + Math.floor(fy * height) * width + Math.floor(fx * width)
    );
  }
  const count = Math.min(6, perItem);
  return Array.from({ length: count }, (_, k) => Math.floor(((k + 0.5) * perItem) / count));
}

function pixelName(p: number, shape: readonly number[]): string {
  if (shape.length === 4) {
    const [, , height, width] = shape;
    const c = Math.floor(p / (height * width));
    const h = Math.floor((p % (height * width)) / width);
    return `pixel (c ${c}, y ${h}, x ${p % width})`;
  }
  return `element ${p}`;
}

function toPoints(value: readonly (readonly number[])[] | Tensor, what: string): (readonly number[])[] {
  if (value instanceof Tensor) {
    const batch = value.shape[0] ?? 0;
    if (batch === 0 || value.size !== 2 * batch) {
      throw new RangeError(`${what} must hold two numbers per batch item, got shape [${value.shape.join(", ")}]`);
    }
    return Array.from({ length: batch }, (_, b) => [value.data[2 * b], value.data[2 * b + 1]]);
  }
  if (!Array.isArray(value)) throw new TypeError(`${what} must be a tensor or a list of [x, y] points`);
  for (const point of value) {
    if (!Array.isArray(point) || point.length !== 2) {
      throw new RangeError(`${what} must be a list of [x, y] points, got an item ${JSON.stringify(point)}`);
    }
  }
  return value as (readonly number[])[];
}

function checkNumbers(values: ArrayLike<number>, what: string): void {
  if (values === null || typeof values !== "object" || typeof values.length !== "number") {
    throw new TypeError(`${what} must be an array of numbers, got ${String(values)}`);
  }
  for (let k = 0; k < values.length; k++) {
    if (typeof values[k] !== "number" || Number.isNaN(values[k])) {
      throw new RangeError(`${what} has a non-number value ${values[k]} at index ${k}`);
    }
  }
}
