/**
 * Display helpers for Deno's Jupyter kernel that fall back to a one-line note in a terminal.
 *
 * | call            | in a notebook                                   | elsewhere                     |
 * |-----------------|-------------------------------------------------|-------------------------------|
 * | `show(figure)`  | an image/svg+xml output                         | prints "[figure: svg, N bytes]"|
 * | `show(png)`     | an image/png output                             | prints "[figure: png, N bytes]"|
 * | `showTable(rows)`| a Markdown table (text/markdown + text/plain)  | prints the Markdown text      |
 *
 * @module
 */
import { type Figure, svgString } from "./plot.ts";

/** What `show` can display: a plot figure, SVG markup, or the bytes of a PNG file. */
export type Displayable = Figure | string | Uint8Array;

// The part of Deno.jupyter these helpers use.
interface JupyterApi {
  display(bundle: Record<string, unknown>, options?: { raw?: boolean }): Promise<void>;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47];

/**
 * Whether code runs inside Deno's Jupyter kernel (where `Deno.jupyter` exists).
 *
 * @returns true in a Deno notebook, false in a script, a test, Bun or Node
 * @example
 * ```ts
 * import { inJupyter } from "../../mod.ts";
 * // this example runs as a script, not in a Jupyter kernel
 * if (inJupyter()) throw new Error("a script is not a Jupyter kernel");
 * ```
 */
export function inJupyter(): boolean {
  return jupyter() !== null;
}

/**
 * Show a figure or a PNG as a notebook output; outside a notebook, print a short note instead.
 *
 * mime = "image/svg+xml" for a figure or SVG markup, "image/png" for PNG bytes.
 *
 * @param item a plot figure, SVG markup, or PNG bytes (e.g. from `encodePng`)
 * @returns nothing once the output is sent (or the note printed)
 * @example
 * ```ts
 * import { plotCurves, show } from "../../mod.ts";
 * const printed: string[] = [];
 * const log = console.log;
 * console.log = (line: string) => printed.push(line); // outside Jupyter show prints one line
 * await show(plotCurves({ y: [0, 1, 4] }));
 * console.log = log;
 * if (!printed[0]?.startsWith("[figure: svg,")) throw new Error(`printed ${printed[0]}`);
 * ```
 */
export async function show(item: Displayable): Promise<void> {
  const bundle = mimeBundle(item);
  const api = jupyter();
  if (api !== null) {
    await api.display(bundle, { raw: true });
    await settle();
  } else {
    const [mime, data] = Object.entries(bundle)[0];
    const bytes = mime === "image/png" ? Math.floor((data.length * 3) / 4) : data.length;
    console.log(`[figure: ${mime === "image/png" ? "png" : "svg"}, ${bytes} bytes]`);
  }
}

/**
 * Show rows of numbers or text as a table (Markdown in a notebook, aligned text elsewhere).
 *
 * One column per key of the first row; numbers are printed with `digits` significant digits.
 *
 * @param rows the table's rows, all with the same keys
 * @param options `digits`: significant digits of numbers (default 4)
 * @returns nothing once the table is shown
 * @example
 * ```ts
 * import { showTable } from "../../mod.ts";
 * const printed: string[] = [];
 * const log = console.log;
 * console.log = (text: string) => printed.push(text); // outside Jupyter showTable prints the Markdown table
 * await showTable([{ steps: 10, error: 0.014 }, { steps: 100, error: 0.0009 }]);
 * console.log = log;
 * if (!printed.join("\n").includes("| steps |")) throw new Error(`printed ${printed.join("\n")}`);
 * ```
 */
export async function showTable(
  rows: readonly Readonly<Record<string, unknown>>[],
  options: { digits?: number } = {},
): Promise<void> {
  const markdown = markdownTable(rows, options);
  const api = jupyter();
  if (api !== null) {
    await api.display({ "text/markdown": markdown, "text/plain": markdown }, { raw: true });
    await settle();
  } else console.log(markdown);
}

/**
 * Rows as a Markdown table, columns padded so the plain text lines up.
 *
 * One column per key of the first row; non-integer numbers keep `digits` significant digits.
 *
 * @param rows the table's rows, all with the same keys
 * @param options `digits`: significant digits of numbers (default 4)
 * @returns the Markdown text
 * @example
 * ```ts
 * import { markdownTable } from "../../mod.ts";
 * const table = markdownTable([{ eta: 0, fid: 13.36 }]);
 * if (table !== "| eta | fid   |\n| --- | ----- |\n| 0   | 13.36 |") throw new Error(table);
 * ```
 */
export function markdownTable(
  rows: readonly Readonly<Record<string, unknown>>[],
  options: { digits?: number } = {},
): string {
  if (rows.length === 0) throw new RangeError("A table needs at least one row, got none");
  const digits = options.digits ?? 4;
  if (!Number.isInteger(digits) || digits < 1 || digits > 17) {
    throw new RangeError(`digits must be an integer in [1, 17], got ${digits}`);
  }
  // A "|" inside a cell would end it: escape it as Markdown does.
  const escape = (text: string) => text.replaceAll("|", "\\|");
  const keys = Object.keys(rows[0]);
  const cell = (v: unknown) =>
    escape(typeof v === "number" && !Number.isInteger(v) ? formatNumber(v, digits) : String(v));
  const cells = rows.map((row) => keys.map((k) => cell(row[k])));
  const widths = keys.map((k, j) => Math.max(3, escape(k).length, ...cells.map((r) => r[j].length)));
  const line = (values: string[]) => `| ${values.map((v, j) => v.padEnd(widths[j])).join(" | ")} |`;
  return [line(keys.map(escape)), `| ${widths.map((w) => "-".repeat(w)).join(" | ")} |`, ...cells.map(line)].join("\n");
}

/**
 * The Jupyter mime bundle for a figure, SVG markup, or PNG bytes.
 *
 * @param item what to display
 * @returns `{ "image/svg+xml": text }` or `{ "image/png": base64 }`
 * @example
 * ```ts
 * import { mimeBundle } from "../../mod.ts";
 * const bundle = mimeBundle('<svg xmlns="http://www.w3.org/2000/svg"></svg>');
 * if (Object.keys(bundle).join() !== "image/svg+xml") throw new Error(Object.keys(bundle).join());
 * ```
 */
export function mimeBundle(item: Displayable): Record<string, string> {
  if (item instanceof Uint8Array) {
    if (!PNG_SIGNATURE.every((b, k) => item[k] === b)) {
      throw new TypeError(`show takes PNG bytes, but these start with ${[...item.slice(0, 4)].join(", ")}`);
    }
    return { "image/png": base64(item) };
  }
  if (typeof item === "string") {
    if (!/^\s*<svg[\s>]/.test(item)) throw new TypeError(`show takes SVG markup, got "${item.slice(0, 40)}"`);
    return { "image/svg+xml": item };
  }
  return { "image/svg+xml": svgString(item) };
}

function jupyter(): JupyterApi | null {
  const deno = (globalThis as { Deno?: { jupyter?: JupyterApi } }).Deno;
  if (deno === undefined) return null;
  try {
    // Outside `deno jupyter` the getter throws.
    return deno.jupyter ?? null;
  } catch {
    return null;
  }
}

// Let the kernel send the display message before the cell can finish: under load, an output sent as the last act
// of a cell was seen to arrive after the cell's end and be dropped by a headless runner.
function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 20));
}

function base64(bytes: Uint8Array): string {
  let binary = "";
  for (let k = 0; k < bytes.length; k += 0x8000) binary += String.fromCharCode(...bytes.subarray(k, k + 0x8000));
  return btoa(binary);
}

function formatNumber(value: number, digits: number): string {
  const abs = Math.abs(value);
  return abs !== 0 && (abs < 1e-3 || abs >= 1e6)
    ? value.toExponential(digits - 1)
    : String(Number(value.toPrecision(digits)));
}
