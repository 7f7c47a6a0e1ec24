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

// The layers of lib/, bottom to top. A file may import from its own layer and the layers below it, never above.
const LAYERS = ["core", "math", "schedulers", "models", "io", "pipelines", "."] as const;

function layerOf(file: string): number {
  const folder = relative(join(root, "lib"), file).split("/");
  return LAYERS.indexOf((folder.length === 1 ? "." : folder[0]) as (typeof LAYERS)[number]);
}

describe("lib/ is layered", () => {
  const libFiles = textFiles(join(root, "lib")).filter((f) => f.endsWith(".ts") && !f.includes("/pretrained/"));

  test("every lib file lives in a known layer folder", () => {
    const unplaced = libFiles.filter((f) => layerOf(f) < 0).map((f) => relative(root, f));
    expect(unplaced).toEqual([]);
  });

  test("no import runs back up a layer (core < math < schedulers < models < io < pipelines < cli)", () => {
    const upward: string[] = [];
    for (const file of libFiles) {
      const source = readFileSync(file, "utf8");
      for (const match of source.matchAll(/^\s*(?:import|export)\b[^;]*?from\s+"(\.{1,2}\/[^"]+)"/gm)) {
        const target = join(file, "..", match[1]);
        if (layerOf(target) > layerOf(file)) upward.push(`${relative(root, file)} -> ${relative(root, target)}`);
      }
    }
    expect(libFiles.length).toBeGreaterThan(30);
    expect(upward).toEqual([]);
  });

  test("the check sees an upward import when there is one", () => {
    // the same rule on a made-up pair: a scheduler importing a pipeline is upward, a pipeline importing a scheduler not
    const scheduler = join(root, "lib", "schedulers", "x.ts");
    const pipeline = join(root, "lib", "pipelines", "y.ts");
    expect(layerOf(pipeline) > layerOf(scheduler)).toBe(true);
    expect(layerOf(scheduler) > layerOf(pipeline)).toBe(false);
  });
});
