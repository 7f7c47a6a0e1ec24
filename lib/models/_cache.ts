/**
 * Private: the on-disk cache of compiled ONNX graphs (the builtin models and UNet checkpoints).
 *
 * Each cached graph `<name>.onnx` has a sidecar `<name>.onnx.json` that records the cache key it was built for, the
 * SHA-256 and length of the graph's bytes, and a few facts. A graph is used only when its sidecar names the key
 * asked for and its bytes hash to the recorded digest; anything else (a missing sidecar, a bit flip, a truncated
 * file, a file swapped with another one, a graph built by other code) is treated as absent and rebuilt. Both files
 * are written through uniquely named temporary files in the same folder and renamed into place, so concurrent
 * writers never see each other's half-written files, and an interrupted write leaves at most a `*.tmp` file that
 * is never read.
 *
 * @module
 */
import { createHash, randomUUID } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";

/** What a sidecar records. */
interface Sidecar {
  format: "ddimlab-cache-1";
  key: string;
  sha256: string;
  bytes: number;
  facts: Record<string, unknown>;
}

/** SHA-256 of some bytes, as hex. */
export function sha256(bytes: Uint8Array | string): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/**
 * A fingerprint of the code that builds a cached graph: the SHA-256 of these source files' text, so that any change
 * to that code changes the cache key. Where a source cannot be read (a bundled build), `fallback` stands in for it.
 */
export function codeFingerprint(modules: readonly URL[], fallback: string): string {
  const hash = createHash("sha256").update(fallback);
  for (const module of modules) {
    try {
      hash.update(readFileSync(fileURLToPath(module)));
    } catch {
      hash.update(`unreadable ${module.pathname}`);
    }
  }
  return hash.digest("hex");
}

/**
 * Every module `entry` imports, directly or through other modules, by relative path (itself first, the rest sorted):
 * the code whose fingerprint a cache key must cover. Only top-level `import`/`export ... from "./x.ts"` lines
 * count (an `import` inside a JSDoc example does not); packages (`node:fs`, `onnx-proto`) are not followed. A module
 * that cannot be read is kept in the list, and `codeFingerprint` records it as unreadable.
 */
export function moduleClosure(entry: URL): URL[] {
  const seen = new Map<string, URL>();
  const pending = [entry];
  while (pending.length > 0) {
    const module = pending.pop()!;
    if (seen.has(module.href)) continue;
    seen.set(module.href, module);
    let source: string;
    try {
      source = readFileSync(fileURLToPath(module), "utf8");
    } catch {
      continue;
    }
    for (const match of source.matchAll(/^(?:import|export)\b(?:[^;"]*?\bfrom)?\s*"(\.{1,2}\/[^"]+)"/gm)) {
      pending.push(new URL(match[1], module));
    }
  }
  const rest = [...seen.values()].filter((url) => url.href !== entry.href);
  return [entry, ...rest.sort((a, b) => (a.href < b.href ? -1 : a.href > b.href ? 1 : 0))];
}

/**
 * The cached graph at `path` if it was built for `key` and its bytes are intact, else undefined.
 *
 * @param path the graph file (its sidecar is `${path}.json`)
 * @param key the cache key the caller would build for
 */
export function readCache(
  path: string,
  key: string,
): { bytes: Uint8Array; facts: Record<string, unknown> } | undefined {
  let sidecar: Sidecar;
  let bytes: Uint8Array;
  try {
    sidecar = JSON.parse(readFileSync(`${path}.json`, "utf8"));
    bytes = new Uint8Array(readFileSync(path));
  } catch {
    return undefined;
  }
  if (
    sidecar === null || typeof sidecar !== "object" || sidecar.format !== "ddimlab-cache-1" || sidecar.key !== key ||
    sidecar.bytes !== bytes.length || sidecar.sha256 !== sha256(bytes)
  ) {
    return undefined;
  }
  return { bytes, facts: sidecar.facts ?? {} };
}

/**
 * Store a graph and its sidecar atomically; returns false (and leaves nothing half-written) where the folder is not
 * writable, since a cache only saves time.
 *
 * @param path the graph file
 * @param key the cache key it was built for
 * @param bytes the graph
 * @param facts small facts to keep beside it
 */
export function writeCache(
  path: string,
  key: string,
  bytes: Uint8Array,
  facts: Record<string, unknown> = {},
): boolean {
  const sidecar: Sidecar = { format: "ddimlab-cache-1", key, sha256: sha256(bytes), bytes: bytes.length, facts };
  try {
    mkdirSync(dirname(path), { recursive: true });
    // The graph first, then the sidecar that vouches for it: a reader that finds the new sidecar finds the new graph.
    writeAtomic(path, bytes);
    writeAtomic(`${path}.json`, JSON.stringify(sidecar));
    return true;
  } catch {
    return false;
  }
}

function writeAtomic(path: string, content: Uint8Array | string): void {
  const temporary = `${path}.${process.pid}.${randomUUID()}.tmp`;
  try {
    writeFileSync(temporary, content);
    renameSync(temporary, path);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw error;
  }
}
