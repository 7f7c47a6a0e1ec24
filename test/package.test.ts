// The manifests that publish ddimlab: package.json (npm) and deno.json (JSR). The consumer's view of the packed
// package (installed with Bun, linked under Deno, run) is checked by .ci/consumer_smoke.sh.
import { afterAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const packageJson = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const denoJson = JSON.parse(readFileSync(join(root, "deno.json"), "utf8"));

test("deno.json maps every npm dependency, and only those, to the range package.json gives it", () => {
  const fromPackageJson = Object.entries(packageJson.dependencies as Record<string, string>)
    .map(([name, range]) => [name, `npm:${name}@${range}`]);
  expect(Object.entries(denoJson.imports).sort()).toEqual(fromPackageJson.sort());
});

test("package.json publishes: not private, a license, the module, the command and the files", () => {
  expect(packageJson.private).toBeUndefined();
  expect(packageJson.license).toBe("Apache-2.0");
  expect(denoJson.license).toBe("Apache-2.0");
  expect(readFileSync(join(root, "LICENSE"), "utf8")).toMatch(/Apache License\s+Version 2\.0, January 2004/);
  expect(packageJson.exports["."]).toBe("./mod.ts");
  expect(denoJson.exports["."]).toBe("./mod.ts");
  expect(packageJson.bin).toEqual({ ddimlab: "./lib/cli.ts" });
  expect(readFileSync(join(root, "lib/cli.ts"), "utf8").split("\n")[0]).toBe("#!/usr/bin/env bun");
});

// A stand-in tree with the published manifests and one file of every kind the checkout holds, so the test shows what
// each registry would take, including the trained checkpoint folder lib/pretrained/ that is not in the checkout yet.
describe("what each registry gets from a tree with every kind of file", () => {
  const tree = mkdtempSync(join(tmpdir(), "ddimlab-package-"));
  afterAll(() => rmSync(tree, { recursive: true, force: true }));
  const checkpoint = ["config.json", "diffusion_pytorch_model.safetensors", "scheduler_config.json", "README.md"]
    .map((name) => `lib/pretrained/shapes32/${name}`);
  const shipped = ["mod.ts", "lib/cli.ts", "lib/_helper.ts", ...checkpoint, "README.md", "LICENSE", "CHANGELOG.md"];
  const notShipped = [
    "test/cli.test.ts",
    "bench/run.ts",
    "notebooks/01_ddim_idea.ipynb",
    "docs/benchmarks/figure.svg",
    "docs/math.md",
    "out/demo/samples.png",
    ".ci/run",
    "lib/notes.txt",
    "tsconfig.json",
    "bunfig.toml",
  ];
  for (const path of [...shipped, ...notShipped]) {
    mkdirSync(join(tree, dirname(path)), { recursive: true });
    writeFileSync(join(tree, path), path.endsWith(".ts") ? `export const name = "${path}";\n` : `${path}\n`);
  }
  copyFileSync(join(root, "package.json"), join(tree, "package.json"));
  copyFileSync(join(root, "deno.json"), join(tree, "deno.json"));
  const env = { ...process.env, NO_COLOR: "1", npm_config_onnxruntime_node_install: "skip" };

  test("npm pack takes mod.ts, lib's modules, lib/pretrained/**, README, LICENSE, CHANGELOG and package.json", () => {
    const run = spawnSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], {
      cwd: tree,
      encoding: "utf8",
      env,
    });
    expect(run.status).toBe(0);
    const files = JSON.parse(run.stdout)[0].files.map((f: { path: string }) => f.path);
    expect(files.sort()).toEqual([...shipped, "package.json"].sort());
  }, 60_000);

  test("deno publish --dry-run takes the same files and deno.json, without a warning", () => {
    const deno = join(root, "node_modules", ".bin", "deno");
    const run = spawnSync(deno, ["publish", "--dry-run", "--allow-dirty"], { cwd: tree, encoding: "utf8", env });
    const output = `${run.stdout}\n${run.stderr}`;
    expect(output).not.toMatch(/^(warning|error)/im);
    expect(run.status).toBe(0);
    const files = [...output.matchAll(/^\s*file:\/\/(\S+) \(/gm)].map((m) => m[1].slice(tree.length + 1));
    expect(files.sort()).toEqual([...shipped, "package.json", "deno.json"].sort());
  }, 120_000);
});
