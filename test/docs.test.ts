import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { jsdocExamples, libSourceFiles, root } from "./_jsdoc.ts";

const deno = `${root}node_modules/.bin/deno`;

const libFiles = libSourceFiles();
const runFiles = ["mod.ts", ...libFiles];

function runDeno(args: string[]) {
  const run = spawnSync(deno, args, { cwd: root, encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } });
  return { status: run.status, output: `${run.stdout}\n${run.stderr}` };
}

describe("JSDoc examples", () => {
  test("mod.ts and every JSDoc @example in lib/ type-check under Deno", () => {
    expect(libFiles.length).toBeGreaterThan(30);
    const run = runDeno(["check", "--doc", "mod.ts", ...libFiles]);
    const errors = run.output.split("\n").filter((line) => /TS\d+|error:/.test(line));
    expect(errors).toEqual([]);
    expect(run.status).toBe(0);
  }, 300_000);

  test("every example asserts its result: it throws when the result is wrong", () => {
    const silent: string[] = [];
    for (const file of runFiles) {
      for (const { line, code } of jsdocExamples(file)) {
        if (!/\bthrow new \w*Error\(/.test(code)) silent.push(`${file}:${line}`);
      }
    }
    expect(silent).toEqual([]);
  });

  test("every exported function, class and constant has an example", () => {
    const bare: string[] = [];
    for (const file of runFiles.filter((f) => !f.split("/").pop()!.startsWith("_"))) {
      const lines = readFileSync(join(root, file), "utf8").split("\n");
      lines.forEach((line, i) => {
        const name = /^export (?:async )?(?:function\*?|class|const|let) (\w+)/.exec(line)?.[1];
        if (name === undefined) return;
        let j = i - 1;
        while (j >= 0 && lines[j].startsWith("//")) j--; // a lint directive between the doc and the export
        if (!lines[j]?.trim().endsWith("*/")) return void bare.push(`${file}: ${name} (no JSDoc)`);
        const doc: string[] = [];
        while (j >= 0 && !lines[j].trim().startsWith("/**")) doc.push(lines[j--]);
        if (!doc.some((l) => l.trim() === "* ```ts")) bare.push(`${file}: ${name}`);
      });
    }
    expect(bare).toEqual([]);
  });
});
