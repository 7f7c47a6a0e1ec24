import { describe, expect, test } from "bun:test";
import { createCanvas, loadImage } from "@napi-rs/canvas";
import { parseHTML } from "linkedom";
import { Buffer } from "node:buffer";
import { readFileSync } from "node:fs";
import { allIdentities } from "../lib/math/equations.ts";
import { proveIdentity } from "../lib/math/prove.ts";

// The course, in order. Each is committed executed (notebooks/run.sh), so these tests read its saved outputs.
const NOTEBOOKS = [
  "01_forward_process.ipynb",
  "02_exact_model.ipynb",
  "03_ddim_idea.ipynb",
  "04_trajectories.ipynb",
  "05_determinism.ipynb",
  "06_accelerated_sampling.ipynb",
  "07_eta1_vs_ddpm.ipynb",
  "08_inversion.ipynb",
  "09_exact_inversion.ipynb",
  "10_interpolation_fusion.ipynb",
  "11_training.ipynb",
  "12_ddim_is_euler.ipynb",
];

interface Output {
  output_type: string;
  name?: string;
  data?: Record<string, string | string[]>;
  text?: string | string[];
  ename?: string;
  evalue?: string;
}

interface Cell {
  cell_type: "code" | "markdown" | "raw";
  id?: string;
  source: string | string[];
  execution_count?: number | null;
  outputs?: Output[];
}

interface Notebook {
  cells: Cell[];
  metadata: { kernelspec?: { name?: string } };
}

const join = (text: string | string[] | undefined) => (Array.isArray(text) ? text.join("") : text ?? "");

function readNotebook(name: string): Notebook {
  return JSON.parse(readFileSync(new URL(`../notebooks/${name}`, import.meta.url), "utf8"));
}

describe.each(NOTEBOOKS)("%s", (name) => {
  test("runs on Deno's kernel and every cell has an id", () => {
    const notebook = readNotebook(name);
    expect(notebook.metadata.kernelspec?.name).toBe("deno");
    for (const cell of notebook.cells) expect(typeof cell.id).toBe("string");
    expect(new Set(notebook.cells.map((c) => c.id)).size).toBe(notebook.cells.length);
  });

  test("was executed top to bottom with no error output", () => {
    const code = readNotebook(name).cells.filter((c) => c.cell_type === "code" && join(c.source).trim() !== "");
    expect(code.length).toBeGreaterThan(0);
    const counts = code.map((c) => c.execution_count);
    for (const count of counts) expect(typeof count).toBe("number");
    expect(counts).toEqual([...counts].sort((a, b) => (a as number) - (b as number)));
    for (const cell of code) {
      for (const output of cell.outputs ?? []) {
        expect(output.output_type === "error" ? `${output.ename}: ${output.evalue}` : "no error").toBe("no error");
        if (output.output_type === "stream" && output.name === "stderr") {
          expect(join(output.text)).not.toMatch(/\berror\b/i);
        }
      }
    }
  });

  test("shows real figures: well-formed SVG or PNG outputs", () => {
    const figures: string[] = [];
    for (const cell of readNotebook(name).cells) {
      for (const output of cell.outputs ?? []) {
        const svg = output.data?.["image/svg+xml"];
        const png = output.data?.["image/png"];
        if (svg !== undefined) {
          const text = join(svg);
          expect(text).toMatch(/^<svg[\s>]/);
          expect(text.trimEnd().endsWith("</svg>")).toBe(true);
          expect(text).toMatch(/<(path|line|rect|circle|image)\b/); // something is drawn
          figures.push("svg");
        }
        if (png !== undefined) {
          const bytes = Buffer.from(join(png), "base64");
          expect([...bytes.subarray(0, 4)]).toEqual([0x89, 0x50, 0x4e, 0x47]);
          const width = bytes.readUInt32BE(16);
          const height = bytes.readUInt32BE(20);
          expect(width * height).toBeGreaterThan(16 * 16);
          figures.push("png");
        }
      }
    }
    expect(figures.length).toBeGreaterThanOrEqual(2);
  });

  test("every figure draws real marks: lines with points, bars with area, dots; a picture is not one flat colour", async () => {
    let figures = 0;
    for (const cell of readNotebook(name).cells) {
      for (const output of cell.outputs ?? []) {
        const svg = output.data?.["image/svg+xml"];
        const png = output.data?.["image/png"];
        if (svg !== undefined) {
          figures++;
          const marks = countMarks(join(svg));
          // an empty histogram (axes, a title, no bars) has none
          expect(`${cell.id}: ${marks} marks`).not.toBe(`${cell.id}: 0 marks`);
        }
        if (png !== undefined) {
          figures++;
          const image = await loadImage(Buffer.from(join(png), "base64"));
          const canvas = createCanvas(image.width, image.height);
          canvas.getContext("2d").drawImage(image, 0, 0);
          const pixels = canvas.getContext("2d").getImageData(0, 0, image.width, image.height).data;
          const colours = new Set<number>();
          for (let p = 0; p < pixels.length && colours.size < 16; p += 4 * 7) {
            colours.add((pixels[p] << 16) | (pixels[p + 1] << 8) | pixels[p + 2]);
          }
          expect(`${cell.id}: ${Math.min(colours.size, 16)} colours`).toBe(`${cell.id}: 16 colours`);
        }
      }
    }
    expect(figures).toBeGreaterThanOrEqual(2);
  });

  test("printed output is short (at most 8 lines): longer text is shown with a display call, which arrives whole", () => {
    for (const cell of readNotebook(name).cells) {
      for (const output of cell.outputs ?? []) {
        if (output.output_type !== "stream") continue;
        const lines = join(output.text).trimEnd().split("\n").length;
        expect(`${cell.id}: ${lines <= 8 ? "short" : `${lines} printed lines`}`).toBe(`${cell.id}: short`);
      }
    }
  });

  test("every decimal number the prose states was printed by an earlier code cell, with the same digits", () => {
    let printed = "";
    const unprinted: string[] = [];
    for (const cell of readNotebook(name).cells) {
      if (cell.cell_type === "markdown") {
        for (const number of statedNumbers(join(cell.source))) {
          if (!wasPrinted(number, printed)) unprinted.push(`${cell.id}: ${number}`);
        }
      }
      for (const output of cell.outputs ?? []) {
        for (const text of [output.text, output.data?.["text/plain"], output.data?.["text/markdown"]]) {
          printed += `${join(text)}\n`;
        }
      }
    }
    expect(unprinted).toEqual([]);
  });

  test("imports the package through ../mod.ts only and says how to use a real checkpoint", () => {
    const cells = readNotebook(name).cells;
    const code = cells.filter((c) => c.cell_type === "code").map((c) => join(c.source)).join("\n");
    const imports = [...code.matchAll(/from\s+"([^"]+)"/g)].map((m) => m[1]);
    expect(imports.length).toBeGreaterThan(0);
    for (const source of imports) expect(["../mod.ts"]).toContain(source);
    const text = cells.map((c) => join(c.source)).join("\n");
    expect(text).toMatch(/checkpoint/i);
  });
});

// A sentence that names where its number comes from (the paper, diffusers, a benchmark's output) may state it.
const CITES_A_SOURCE = /\b(paper|diffusers|pytorch|arxiv|et al|table \d)|\b(docs|bench)\/|\.json\b/i;

/**
 * The decimal numbers (with a "." or an exponent: 0.57, 2.7e-4, 4e-5) a markdown cell states in its prose: outside
 * code (fenced or inline), outside formulas ($...$, $$...$$), and outside sentences that cite a source.
 */
function statedNumbers(markdown: string): string[] {
  const prose = markdown
    .replace(/```[\s\S]*?```/g, " code ")
    .replace(/`[^`]*`/g, " code ")
    .replace(/\$\$[\s\S]*?\$\$/g, " formula ")
    .replace(/\$[^$]*\$/g, " formula ");
  // sentences end at ". " before a capital, at a blank line, and before a list item, table row or heading
  const sentences = prose.split(/(?<=[.!?:])\s+(?=[A-Z(\[*"])|\n\s*\n|\n(?=\s*(?:[-*|#]|\d+\.)\s)/);
  return sentences
    .filter((sentence) => !CITES_A_SOURCE.test(sentence))
    .flatMap((sentence) =>
      [...sentence.matchAll(/(?<![\w.])(\d+\.\d+(?:e[-+]?\d+)?|\d+e[-+]?\d+)(?!\d)/gi)].map((m) => m[1])
    );
}

/** Whether `number` occurs in `printed` as a whole number: not as a piece of a longer one (0.5 in 10.57). */
function wasPrinted(number: string, printed: string): boolean {
  return new RegExp(`(?<![\\d.])${number.replace(/[.+]/g, "\\$&")}(?!\\d)`).test(printed);
}

/**
 * The data marks an Observable Plot figure draws: paths of a line mark with at least two points, bars (rect) with a
 * positive width and height, dots (circle), and tick lines. Axes, grids, titles and rules are not data.
 */
function countMarks(svg: string): number {
  const { document } = parseHTML(`<!DOCTYPE html><html><body>${svg}</body></html>`);
  let marks = 0;
  for (const group of document.querySelectorAll("g[aria-label]")) {
    const label = group.getAttribute("aria-label") ?? "";
    if (label === "line" || label === "area") {
      for (const path of group.querySelectorAll("path")) {
        if ((path.getAttribute("d") ?? "").split(/[ML]/).filter((p: string) => p.trim() !== "").length >= 2) marks++;
      }
    } else if (label === "rect" || label === "bar" || label === "cell") {
      for (const rect of group.querySelectorAll("rect")) {
        if (Number(rect.getAttribute("width")) > 0 && Number(rect.getAttribute("height")) > 0) marks++;
      }
    } else if (label === "dot") {
      marks += group.querySelectorAll("circle").length;
    } else if (label === "tick") {
      marks += group.querySelectorAll("line").length;
    }
  }
  return marks;
}

describe("the check of stated numbers", () => {
  test("finds decimals in prose and skips formulas, code, integers and sentences that cite a source", () => {
    const markdown = [
      "The noise reaches 0.57 at the first step, and alphaBar_999 is about 4e-5.",
      "Inside a formula $\\sigma = 0.25$ and in code `eta = 0.5` nothing counts; 50 steps is an integer.",
      "The paper reports an FID of 4.67 (Table 1). Bars start at 2.7e-4.",
      "",
      "- a list item with 1.5",
      "```ts",
      "const x = 3.25;",
      "```",
    ].join("\n");
    expect(statedNumbers(markdown)).toEqual(["0.57", "4e-5", "2.7e-4", "1.5"]);
  });

  test("counts a number as printed only with the same digits, not as a piece of a longer number", () => {
    expect(wasPrinted("0.57", "sigma_t: 0.57 at t = 980")).toBe(true);
    expect(wasPrinted("-0.5", "mean -0.5\n")).toBe(true);
    expect(wasPrinted("0.57", "sigma_t: 0.5697")).toBe(false);
    expect(wasPrinted("0.57", "sigma_t: 10.57")).toBe(false);
    expect(wasPrinted("2.7e-4", "2.702e-4")).toBe(false);
  });
});

describe("notebook 3's proof", () => {
  test(
    "is shown whole: the statement and every numbered step proveIdentity gives for the eta = 1 identity, no formula summarized",
    () => {
      const cell = readNotebook("03_ddim_idea.ipynb").cells.find((c) => join(c.source).includes("keyProof"))!;
      const shown = (cell.outputs ?? []).map((o) => join(o.data?.["text/plain"] ?? o.text)).join("");
      const key = allIdentities().find(({ identity }) => identity.id === "8-update")!.identity;
      const proof = proveIdentity(key.lhs, key.rhs, { positive: key.positive, maxStepLength: 10000 });
      expect(proof.steps.length).toBeGreaterThan(10);
      const numbered = proof.steps.map((line, k) => `${String(k + 1).padStart(2)}. ${line}`);
      expect(shown.trimEnd().split("\n")).toEqual([key.statement, ...numbered]);
      expect(shown).not.toMatch(/<(expression|polynomial) of \d+ terms/);
    },
    120_000,
  );
});
