import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

// The repository must work as a fresh clone: nothing it ships may read files from beside the checkout (such as a
// `shared` folder next to it), and every fixture the tests read must be inside test/fixtures.
const root = fileURLToPath(new URL("../", import.meta.url));
const SKIP = new Set(["node_modules", ".git", "out", ".cache", "checkpoints", "fixtures", ".gpu", ".gl", ".whl"]);
const TEXT = /\.(ts|js|mjs|json|md|ipynb|sh|py|toml|txt)$|^run$/;

function textFiles(dir: string): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(dir)) {
    if (SKIP.has(entry)) continue;
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) files.push(...textFiles(path));
    else if (TEXT.test(entry)) files.push(path);
  }
  return files;
}

describe("the repository is self-contained", () => {
  test("no source, test, benchmark, notebook or doc refers to a folder beside the checkout", () => {
    // Written in pieces so that this file does not match itself.
    const outside = new RegExp(["\\.\\./", "shared\\b|\\.\\./\\.\\./", "shared\\b|/work/", "shared"].join(""));
    const files = textFiles(root);
    expect(files.length).toBeGreaterThan(50);
    const offenders = files.filter((file) => outside.test(readFileSync(file, "utf8"))).map((f) => relative(root, f));
    expect(offenders).toEqual([]);
  });

  test("every fixture the tests name is present in test/fixtures", () => {
    const named = new Set<string>();
    for (const file of textFiles(join(root, "test"))) {
      for (const match of readFileSync(file, "utf8").matchAll(/fixtures\/([\w./-]+\.(?:json|safetensors|bin|onnx))/g)) {
        named.add(match[1]);
      }
    }
    expect(named.size).toBeGreaterThan(0);
    for (const path of named) {
      expect(`${path}: ${existsSync(join(root, "test", "fixtures", path))}`).toBe(`${path}: true`);
    }
  });
});
