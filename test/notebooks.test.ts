import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";

// The course, in order. Each is committed executed (notebooks/run.sh), so these tests read its saved outputs.
const NOTEBOOKS = [
  "01_ddim_idea.ipynb",
  "02_eta1_vs_ddpm.ipynb",
  "03_accelerated_sampling.ipynb",
  "04_determinism.ipynb",
  "05_inversion.ipynb",
  "06_interpolation_fusion.ipynb",
  "07_trajectories.ipynb",
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
