// Every JSDoc @example in lib/ runs, as `deno test --doc` would run it, but in this one process: mod.ts is loaded once,
// so the whole set takes seconds instead of the minutes that one fresh module per example costs. The examples check
// their own results and throw when a check fails (Deno std's style), so a wrong number fails here. test/docs.test.ts
// type-checks the same examples under Deno and checks that each one asserts.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const root = new URL("../", import.meta.url).pathname;

function tsFiles(dir: string): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(dir).sort()) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) {
      if (entry !== "pretrained") files.push(...tsFiles(path));
    } else if (entry.endsWith(".ts")) files.push(path);
  }
  return files;
}

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

/** An example's relative imports, made absolute against the folder of the file it documents. */
function absoluteImports(code: string, sourceFile: string): string {
  return code.replace(
    /(\bfrom\s+|\bimport\s*\(\s*)"(\.{1,2}\/[^"]+)"/g,
    (_, lead: string, specifier: string) => `${lead}${JSON.stringify(resolve(dirname(sourceFile), specifier))}`,
  );
}

describe("the JSDoc examples of lib/ run and their checks hold", () => {
  // inside the repository, so that an example's bare imports ("onnxruntime-node") resolve to its node_modules
  const scratch = mkdtempSync(join(root, "test", ".examples-"));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));
  const files = [join(root, "mod.ts"), ...tsFiles(join(root, "lib"))];

  test("there are examples to run in every layer", () => {
    const counted = files.map((file) => [relative(root, file), examples(readFileSync(file, "utf8")).length] as const);
    const total = counted.reduce((sum, [, count]) => sum + count, 0);
    expect(total).toBeGreaterThan(200);
    for (const layer of ["core", "math", "schedulers", "models", "io", "pipelines"]) {
      expect({ layer, some: counted.some(([file, count]) => file.startsWith(`lib/${layer}/`) && count > 0) })
        .toEqual({ layer, some: true });
    }
  });

  for (const file of files) {
    const name = relative(root, file);
    for (const { line, code } of examples(readFileSync(file, "utf8"))) {
      test(`${name}:${line}`, async () => {
        const path = join(scratch, `${name.replaceAll("/", "_").replace(/\.ts$/, "")}_${line}.ts`);
        writeFileSync(path, absoluteImports(code, file));
        await import(path);
      }, 120_000); // the first one loads mod.ts (onnxruntime-node, canvas) for all of them
    }
  }
});
