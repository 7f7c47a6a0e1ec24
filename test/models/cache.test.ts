import { describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { codeFingerprint, moduleClosure, readCache, sha256, writeCache } from "../../lib/models/_cache.ts";

describe("compiled-graph cache files", () => {
  test("the cache key follows the code that builds: one changed byte of a builder source changes it", () => {
    const dir = mkdtempSync(join(tmpdir(), "ddimlab-fingerprint-"));
    try {
      const a = join(dir, "a.ts");
      const b = join(dir, "b.ts");
      writeFileSync(a, "export const x = 1;\n");
      writeFileSync(b, "export const y = 2;\n");
      const modules = [pathToFileURL(a), pathToFileURL(b)];
      const first = codeFingerprint(modules, "v1");
      expect(codeFingerprint(modules, "v1")).toBe(first);
      writeFileSync(b, "export const y = 3;\n");
      expect(codeFingerprint(modules, "v1")).not.toBe(first);
      expect(codeFingerprint(modules, "v2")).not.toBe(codeFingerprint(modules, "v1"));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("the modules a fingerprint covers: every relative import, followed through, never a JSDoc example's", () => {
    const dir = mkdtempSync(join(tmpdir(), "ddimlab-closure-"));
    try {
      const files: Record<string, string> = {
        "a.ts": [
          "/**",
          " * ```ts",
          ' * import { d } from "./d.ts";',
          " * ```",
          " */",
          'import type { B } from "./b.ts";',
          'import { readFileSync } from "node:fs";',
          "export const a: B = 1;",
        ].join("\n"),
        "b.ts": 'export type B = number;\nexport {\n  c,\n} from "./sub/c.ts";\n',
        "sub/c.ts": 'import "../a.ts";\nexport const c = 3;\n',
        "d.ts": "export const d = 4;\n",
      };
      mkdirSync(join(dir, "sub"));
      for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
      const closure = moduleClosure(pathToFileURL(join(dir, "a.ts")));
      expect(closure.map((url) => fileURLToPath(url).slice(dir.length + 1))).toEqual(["a.ts", "b.ts", "sub/c.ts"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("the builtin models' key covers the code they build with, the scheduler tables included", () => {
    const covered = moduleClosure(new URL("../../lib/models/builtin_models.ts", import.meta.url))
      .map((url) => fileURLToPath(url).split("/lib/")[1]);
    for (
      const module of [
        "models/builtin_models.ts",
        "models/gaussian_mixture.ts",
        "models/onnx_graph.ts",
        "schedulers/ddpm.ts",
        "math/schedules.ts",
        "core/tensor.ts",
      ]
    ) {
      expect(covered).toContain(module);
    }
  });

  test("a stored graph reads back only under its own key and only while its SHA-256 matches", () => {
    const dir = mkdtempSync(join(tmpdir(), "ddimlab-cachefile-"));
    try {
      const path = join(dir, "g.onnx");
      const bytes = new TextEncoder().encode("graph bytes");
      expect(writeCache(path, "key-1", bytes, { rank: 4 })).toBe(true);
      // SHA-256("graph bytes"), computed independently with `printf 'graph bytes' | sha256sum`
      expect(sha256(bytes)).toBe("26d0900dac51fc6d16dfda2b932b2eeb10c2b3c1517d6e6365e224d05c23fcc3");
      expect(readCache(path, "key-1")).toEqual({ bytes, facts: { rank: 4 } });
      expect(readCache(path, "key-2")).toBeUndefined();
      writeFileSync(path, "graph bytez");
      expect(readCache(path, "key-1")).toBeUndefined();
      expect(readdirSync(dir).sort()).toEqual(["g.onnx", "g.onnx.json"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("an unwritable cache folder is skipped and leaves no temporary file", () => {
    const dir = mkdtempSync(join(tmpdir(), "ddimlab-cachefile-"));
    try {
      writeFileSync(join(dir, "file"), "");
      // a folder path that runs through a regular file cannot be created
      expect(writeCache(join(dir, "file", "g.onnx"), "k", new Uint8Array(4))).toBe(false);
      expect(readdirSync(dir)).toEqual(["file"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
