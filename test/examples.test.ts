// Every JSDoc @example in lib/ runs, as `deno test --doc` would run it, but in this one process: mod.ts is loaded once,
// so the whole set takes seconds instead of the minutes that one fresh module per example costs. The examples check
// their own results and throw when a check fails (Deno std's style), so a wrong number fails here. test/docs.test.ts
// type-checks the same examples under Deno and checks that each one asserts.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { jsdocExamples, libSourceFiles, root } from "./_jsdoc.ts";

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
  const files = ["mod.ts", ...libSourceFiles()];

  test("there are examples to run in every layer", () => {
    const counted = files.map((file) => [file, jsdocExamples(file).length] as const);
    const total = counted.reduce((sum, [, count]) => sum + count, 0);
    expect(total).toBeGreaterThan(200);
    for (const layer of ["core", "math", "schedulers", "models", "io", "pipelines"]) {
      expect({ layer, some: counted.some(([file, count]) => file.startsWith(`lib/${layer}/`) && count > 0) })
        .toEqual({ layer, some: true });
    }
  });

  for (const name of files) {
    for (const { line, code } of jsdocExamples(name)) {
      test(`${name}:${line}`, async () => {
        const path = join(scratch, `${name.replaceAll("/", "_").replace(/\.ts$/, "")}_${line}.ts`);
        writeFileSync(path, absoluteImports(code, join(root, name)));
        await import(path);
      }, 120_000); // the first one loads mod.ts (onnxruntime-node, canvas) for all of them
    }
  }
});
