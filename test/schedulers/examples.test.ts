// Every JSDoc @example in lib/schedulers/ runs, as `deno test --doc` would run it, but in this one process (mod.ts is
// loaded once, so the whole set takes about a second instead of minutes). The examples check their own results and
// throw when a check fails (Deno std's style), so a wrong number fails here.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const root = new URL("../../", import.meta.url).pathname;
const folder = join(root, "lib/schedulers");

/** The ```ts blocks inside the JSDoc comments of a source file, with the line each starts on. */
function examples(source: string): { line: number; code: string }[] {
  const found: { line: number; code: string }[] = [];
  const lines = source.split("\n");
  for (let k = 0; k < lines.length; k++) {
    if (!/^\s*\* ```ts\s*$/.test(lines[k])) continue;
    const body: string[] = [];
    let end = k + 1;
    for (; end < lines.length && !/^\s*\* ```\s*$/.test(lines[end]); end++) {
      body.push(lines[end].replace(/^\s*\* ?/, ""));
    }
    found.push({ line: k + 1, code: body.join("\n") });
    k = end;
  }
  return found;
}

describe("the JSDoc examples of lib/schedulers run and their checks hold", () => {
  const scratch = mkdtempSync(join(tmpdir(), "ddimlab-examples-"));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));
  const files = readdirSync(folder).filter((name) => name.endsWith(".ts")).sort();

  test("every public scheduler file has examples to run", () => {
    for (const name of files.filter((name) => !name.startsWith("_") || name === "_base.ts")) {
      expect({ name, count: examples(readFileSync(join(folder, name), "utf8")).length > 0 }).toEqual({
        name,
        count: true,
      });
    }
  });

  for (const name of files) {
    for (const { line, code } of examples(readFileSync(join(folder, name), "utf8"))) {
      test(`${name}:${line}`, async () => {
        const path = join(scratch, `${name.replace(/\.ts$/, "")}_${line}.ts`);
        writeFileSync(path, code.replaceAll(`"../../mod.ts"`, JSON.stringify(join(root, "mod.ts"))));
        await import(path);
      }, 60_000); // the first one loads mod.ts (onnxruntime-node, canvas) for all of them
    }
  }
});
