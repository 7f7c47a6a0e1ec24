/**
 * Private: the files of a diffusers checkpoint folder and where its compiled graph is cached outside it, shared by
 * the checkpoint compiler and the loader.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { basename, join } from "node:path";

/** The weight files of a UNet2DModel folder, in the order they are looked for. */
export const WEIGHT_FILES = ["diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"] as const;

/** A JSON object read from a file, or an error that names the file. */
export function readJson(path: string): Record<string, unknown> {
  try {
    const value = JSON.parse(readFileSync(path, "utf8"));
    if (value === null || typeof value !== "object" || Array.isArray(value)) throw new Error("not a JSON object");
    return value;
  } catch (error) {
    throw new Error(`Cannot read ${path}: ${error instanceof Error ? error.message : error}`);
  }
}

/** The per-user cache folder of a checkpoint's compiled graph: `$DDIMLAB_CACHE/unet/NAME` or `~/.cache/ddimlab/...`. */
export function userCacheDir(checkpointDir: string): string {
  const base = process.env.DDIMLAB_CACHE ?? join(homedir(), ".cache", "ddimlab");
  return join(base, "unet", basename(checkpointDir));
}
