/**
 * The writer the notebook scripts share: collect markdown and code cells, then write `notebooks/NN_name.ipynb`
 * (unexecuted, cell ids "NN-00", "NN-01", ...), keeping the outputs of an earlier execution when no code cell changed.
 *
 * Cells are written with String.raw so LaTeX keeps its backslashes; inside them "\`" stands for a backtick and
 * "\${" for a template placeholder of the notebook's own code.
 *
 * @module
 */

/** A notebook being written: `md` and `code` add cells in order, `write` saves it. */
export interface NotebookWriter {
  md(text: string): void;
  code(text: string): void;
  write(): Promise<void>;
}

/**
 * Start the notebook `notebooks/NAME.ipynb`, whose cell ids take the two-digit prefix of NAME.
 *
 * @param name the file name without `.ipynb`, such as "05_determinism"
 * @returns the writer
 * @example
 * ```ts
 * import { notebookWriter } from "./_notebook.ts";
 * const notebook = notebookWriter("05_determinism");
 * notebook.md(String.raw`# 5. Determinism`);
 * ```
 */
export function notebookWriter(name: string): NotebookWriter {
  const prefix = name.slice(0, 2);
  const cells: { kind: "markdown" | "code"; text: string }[] = [];
  const unescape = (text: string) => text.replace(/\\([`$])/g, "$1").trim();
  return {
    md: (text) => void cells.push({ kind: "markdown", text: unescape(text) }),
    code: (text) => void cells.push({ kind: "code", text: unescape(text) }),
    async write() {
      const notebook = {
        cells: cells.map(({ kind, text }, k) => ({
          cell_type: kind,
          id: `${prefix}-${String(k).padStart(2, "0")}`,
          metadata: {},
          source: text.split(/(?<=\n)/),
          ...(kind === "code" ? { execution_count: null, outputs: [] } : {}),
        })),
        metadata: {
          kernelspec: { display_name: "Deno", language: "typescript", name: "deno" },
          language_info: {
            codemirror_mode: "typescript",
            file_extension: ".ts",
            mimetype: "text/x.typescript",
            name: "typescript",
            nbconvert_exporter: "script",
            pygments_lexer: "typescript",
          },
        },
        nbformat: 4,
        nbformat_minor: 5,
      };
      const path = new URL(`../../notebooks/${name}.ipynb`, import.meta.url);
      // Outputs of an earlier execution are kept when every code cell is unchanged (a prose-only edit needs no rerun).
      const previous = await Deno.readTextFile(path).then(JSON.parse).catch(() => null);
      const codeOf = (nb: { cells: { cell_type: string; source: string[] }[] }) =>
        JSON.stringify(nb.cells.filter((c) => c.cell_type === "code").map((c) => c.source.join("")));
      if (previous !== null && codeOf(previous) === codeOf(notebook)) {
        const executed = previous.cells.filter((c: { cell_type: string }) => c.cell_type === "code");
        notebook.cells.filter((c) => c.cell_type === "code").forEach((c, k) =>
          Object.assign(c, { execution_count: executed[k].execution_count, outputs: executed[k].outputs })
        );
        console.log("code unchanged: kept the executed outputs");
      }
      await Deno.writeTextFile(path, JSON.stringify(notebook, null, 1) + "\n");
      console.log(`wrote ${path.pathname}`);
    },
  };
}
