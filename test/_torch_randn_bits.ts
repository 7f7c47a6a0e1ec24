/**
 * Loader for `test/fixtures/torch-randn-bits.json`: the exact float32 bits of
 * `torch.randn(size, generator=torch.Generator().manual_seed(seed))` (PyTorch 1.13, CPU, AVX2 kernel), written by
 * tools/torch_randn_fixture.py, and the bit comparison the generator tests share.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";

/** One fixture case: every value (`hex`), or above 1000 elements the SHA-256 of all bytes and the first 256 values. */
export interface TorchRandnBitsCase {
  seed: number;
  size: number;
  hex?: string;
  sha256?: string;
  head_hex?: string;
}

/** The fixture's cases. */
export function torchRandnBitsCases(): TorchRandnBitsCase[] {
  const text = readFileSync(new URL("./fixtures/torch-randn-bits.json", import.meta.url), "utf8");
  return JSON.parse(text).cases;
}

/** The little-endian bytes of float32 values, as lowercase hex. */
export function float32Hex(values: Float32Array): string {
  return Buffer.from(values.buffer, values.byteOffset, values.byteLength).toString("hex");
}

/**
 * What a case holds, computed from our values the same way, so a test compares it with the case as a whole:
 * `{ seed, size, hex }`, or `{ seed, size, sha256, head_hex }`.
 */
export function describeLikeCase(c: TorchRandnBitsCase, values: Float32Array): TorchRandnBitsCase {
  if (c.hex !== undefined) return { seed: c.seed, size: c.size, hex: float32Hex(values) };
  return {
    seed: c.seed,
    size: c.size,
    sha256: createHash("sha256").update(new Uint8Array(values.buffer, values.byteOffset, values.byteLength)).digest(
      "hex",
    ),
    head_hex: float32Hex(values.subarray(0, 256)),
  };
}
