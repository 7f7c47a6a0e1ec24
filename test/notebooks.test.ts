import { describe, expect, test } from "bun:test";
import { createCanvas, loadImage } from "@napi-rs/canvas";
import { parseHTML } from "linkedom";
import { Buffer } from "node:buffer";
import { readFileSync } from "node:fs";
import { allIdentities } from "../lib/equations.ts";
import { proveIdentity } from "../lib/prove.ts";

// The course, in order. Each is committed executed (notebooks/run.sh), so these tests read its saved outputs.
const NOTEBOOKS = [
  "01_ddim_idea.ipynb",
  "07_eta1_vs_ddpm.ipynb",
  "06_accelerated_sampling.ipynb",
  "05_determinism.ipynb",
  "08_inversion.ipynb",
  "06_interpolation_fusion.ipynb",
  "07_trajectories.ipynb",
  "08_learned_model.ipynb",
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

describe("notebook 1's proof", () => {
  test("is shown whole: the statement and every step proveIdentity gives for the eta = 1 identity", () => {
    const cell = readNotebook("01_ddim_idea.ipynb").cells.find((c) => join(c.source).includes("keyProof"))!;
    const shown = (cell.outputs ?? []).map((o) => join(o.data?.["text/plain"] ?? o.text)).join("");
    const key = allIdentities().find(({ identity }) => identity.id === "8-update")!.identity;
    const proof = proveIdentity(key.lhs, key.rhs, { positive: key.positive, maxStepLength: 160 });
    expect(proof.steps.length).toBeGreaterThan(10);
    expect(shown.trimEnd().split("\n")).toEqual([key.statement, ...proof.steps.map((line) => `  ${line}`)]);
  }, 120_000);
});
