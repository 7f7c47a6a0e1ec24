/**
 * What the two example tests share (test/docs.test.ts checks the examples, test/examples.test.ts runs them): the
 * package's TypeScript sources and the ```ts blocks of their JSDoc.
 *
 * @module
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";

/** The repository root, with a trailing slash. */
export const root: string = new URL("../", import.meta.url).pathname;

/** Every `.ts` file under lib/ (the shipped checkpoints' folder holds none), relative to the root, sorted. */
export function libSourceFiles(): string[] {
  const walk = (dir: string): string[] =>
    readdirSync(dir).sort().flatMap((entry) => {
      const path = join(dir, entry);
      if (statSync(path).isDirectory()) return walk(path);
      return entry.endsWith(".ts") ? [relative(root, path)] : [];
    });
  return walk(join(root, "lib"));
}

/** The ```ts blocks inside the JSDoc comments of a source file (a path relative to the root), with their lines. */
export function jsdocExamples(file: string): { line: number; code: string }[] {
  const lines = readFileSync(join(root, file), "utf8").split("\n");
  const found: { line: number; code: string }[] = [];
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
