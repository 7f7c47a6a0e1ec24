/**
 * The checkpoint compiler: a diffusers UNet2DModel folder (`config.json` plus `diffusion_pytorch_model.safetensors`
 * or `.bin`) turned into an ONNX graph in TypeScript, and that graph cached on disk.
 *
 * | name         | code                  | meaning                                                        |
 * |--------------|-----------------------|----------------------------------------------------------------|
 * | config       | `UNet2DConfig`        | the parsed `config.json`                                        |
 * | weights      | `weightsFromTensors`  | the state dict, from safetensors or a PyTorch zip              |
 * | graph        | `onnx`                | the ONNX ModelProto `compileUNet` builds from both             |
 * | key          | `key`                 | SHA-256 of the compiler's code, the config and the weights     |
 *
 * 1. read the config and the weights; 2. look for a cached graph under the key; 3. else compile and cache it.
 * The key covers every module the compiler imports (their sources' fingerprint), so a changed compiler recompiles.
 * Running the graph is `onnx_unet.ts`'s job; finding a checkpoint from a path is `load.ts`'s.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { accessSync, constants, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { codeFingerprint, moduleClosure, readCache, writeCache } from "./_cache.ts";
import { readJson, userCacheDir, WEIGHT_FILES } from "./_checkpoint_files.ts";
import { parseSafetensors } from "./safetensors.ts";
import { parseTorchCheckpoint } from "./torch_checkpoint.ts";
import { parseUNetConfig, type UNet2DConfig } from "./unet_config.ts";
import { compileUNet, UNET_COMPILER_VERSION, weightsFromTensors } from "./unet_onnx.ts";

/** Options of `compileCheckpoint`. */
export interface CompileCheckpointOptions {
  /** The weight file to read (default: the folder's `diffusion_pytorch_model.safetensors`, else `.bin`). */
  weightsFile?: string;
  /**
   * Where the compiled graph is cached, keyed on the weights, the config and the compiler's code, and verified by
   * SHA-256 before use: a folder, or `false` to compile in memory every time. Default: the checkpoint folder when it
   * is writable, else `$DDIMLAB_CACHE/unet/<folder>` (`~/.cache/ddimlab/unet/`).
   */
  cacheDir?: string | false;
  /** Compile even when an intact cached graph exists, and replace it (default false). */
  refresh?: boolean;
}

/** What `compileCheckpoint` returns. */
export interface CompiledCheckpoint {
  /** The parsed config.json. */
  config: UNet2DConfig;
  /** The ONNX graph's bytes. */
  onnx: Uint8Array;
  /** Whether the bytes came from the cache rather than a fresh compile. */
  fromCache: boolean;
  /** The weight file that was read. */
  weightsPath: string;
}

/**
 * Compile a UNet2DModel checkpoint folder to ONNX bytes, or read them from the cache when an intact graph built
 * from the same compiler code, config and weights is there.
 *
 * key = SHA-256(compiler version, SHA-256 of the compiler's sources, config.json, weight bytes)
 *
 * @param dir the checkpoint folder (config.json + weights)
 * @param options the weight file, the cache folder, and whether to recompile regardless
 * @returns the config, the graph's bytes, and whether they came from the cache
 * @throws Error naming the missing config.json or weight file, the unsupported config value or the missing weight
 * @example
 * ```ts
 * import { compileCheckpoint } from "../../mod.ts";
 * const compiled = compileCheckpoint("test/fixtures/unet/tiny-ddpm", { cacheDir: false });
 * if (compiled.config.sampleSize !== 16 || compiled.fromCache) throw new Error("expected a fresh 16x16 UNet");
 * // an ONNX ModelProto starts with field 1 (ir_version), a varint: tag byte 0x08
 * if (compiled.onnx[0] !== 0x08) throw new Error(`not an ONNX ModelProto: first byte ${compiled.onnx[0]}`);
 * ```
 */
export function compileCheckpoint(dir: string, options: CompileCheckpointOptions = {}): CompiledCheckpoint {
  // 1. the config and the weights
  const { config, bytes, weightsPath } = readCheckpoint(dir, options.weightsFile);
  // 2. the key covers the code that compiles (its sources' fingerprint), the config and the weights' bytes
  compilerFingerprint ??= codeFingerprint(moduleClosure(new URL(import.meta.url)), UNET_COMPILER_VERSION);
  const key = createHash("sha256")
    .update(UNET_COMPILER_VERSION)
    .update(compilerFingerprint)
    .update(JSON.stringify(config.raw, Object.keys(config.raw).sort()))
    .update(bytes)
    .digest("hex");
  const cacheDir = resolveCacheDir(options.cacheDir, dir);
  const cachePath = cacheDir === undefined ? undefined : join(cacheDir, `unet-${key.slice(0, 20)}.onnx`);
  // a cached graph is used only when its sidecar names this key and its SHA-256 matches; else it is recompiled
  const cached = cachePath === undefined || options.refresh ? undefined : readCache(cachePath, key);
  if (cached !== undefined) return { config, onnx: cached.bytes, fromCache: true, weightsPath };
  // 3. compile; caching is an optimisation: an unwritable folder only costs a recompile next time
  const onnx = compileFromCheckpoint(config, bytes, weightsPath);
  if (cachePath !== undefined) writeCache(cachePath, key, onnx);
  return { config, onnx, fromCache: false, weightsPath };
}

/**
 * Compile a UNet2DModel checkpoint folder to an `.onnx` file that `loadUNet` (or any onnxruntime) can load.
 *
 * The folder's config.json is copied next to the file when that folder has none, so the file reloads with its facts.
 *
 * @param dir the checkpoint folder (config.json + weights)
 * @param outPath where to write the `.onnx` file
 * @returns the path written
 * @example
 * ```ts
 * import { exportUNetOnnx, loadUNet } from "../../mod.ts";
 * import { mkdtempSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * const out = join(mkdtempSync(join(tmpdir(), "ddimlab-")), "unet.onnx");
 * const file = exportUNetOnnx("test/fixtures/unet/tiny-ddpm", out);
 * const unet = await loadUNet(file);
 * if (unet.sampleSize !== 16) throw new Error(`the exported file lost its config: sampleSize ${unet.sampleSize}`);
 * unet.dispose();
 * ```
 */
export function exportUNetOnnx(dir: string, outPath: string): string {
  const { onnx } = compileCheckpoint(dir, { cacheDir: false });
  mkdirSync(dirname(outPath), { recursive: true });
  writeFileSync(outPath, onnx);
  const sidecar = join(dirname(outPath), "config.json");
  if (!existsSync(sidecar)) writeFileSync(sidecar, readFileSync(join(dir, "config.json")));
  return outPath;
}

function readCheckpoint(dir: string, weightsFile?: string) {
  const configPath = join(dir, "config.json");
  if (!existsSync(configPath)) throw new Error(`No config.json in ${dir}: a UNet2DModel checkpoint needs one`);
  const config = parseUNetConfig(readJson(configPath), configPath);
  const weightsPath = weightsFile ?? WEIGHT_FILES.map((w) => join(dir, w)).find((w) => existsSync(w));
  if (weightsPath === undefined) throw new Error(`No weights in ${dir}: expected ${WEIGHT_FILES.join(" or ")}`);
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(weightsPath);
  } catch (error) {
    throw new Error(`Cannot read the weight file ${weightsPath}: ${error instanceof Error ? error.message : error}`);
  }
  return { config, weightsPath, bytes };
}

function compileFromCheckpoint(config: UNet2DConfig, bytes: Uint8Array, weightsPath: string): Uint8Array {
  const tensors = weightsPath.endsWith(".bin") || weightsPath.endsWith(".pt") || weightsPath.endsWith(".pth")
    ? parseTorchCheckpoint(bytes, weightsPath)
    : parseSafetensors(bytes, weightsPath).tensors;
  return compileUNet(config, weightsFromTensors(tensors, weightsPath));
}

/** The fingerprint of this module and every module it imports (computed once). */
let compilerFingerprint: string | undefined;

function resolveCacheDir(option: string | false | undefined, checkpointDir: string): string | undefined {
  if (option === false) return undefined;
  if (typeof option === "string") return option;
  try {
    accessSync(checkpointDir, constants.W_OK);
    return checkpointDir;
  } catch {
    return userCacheDir(checkpointDir);
  }
}
