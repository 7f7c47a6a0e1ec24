/**
 * Assemble lib/schedulers/_kernels.wat (WebAssembly text with SIMD) and write its bytes, base64, into
 * lib/schedulers/_kernels_wasm.ts, the module the package loads (so Bun, Deno and a bundler all get it without a file
 * read). Run after editing the .wat: `bun tools/build_kernels_wasm.ts`. test/schedulers/kernels.test.ts fails when the
 * committed bytes are not this build of the committed source.
 *
 * @module
 */
import { readFileSync, writeFileSync } from "node:fs";
import wabt from "wabt";

/**
 * The module's bytes: the .wat assembled with the SIMD feature.
 *
 * @param source the WebAssembly text
 * @returns the binary module
 */
export async function assembleKernels(source: string): Promise<Uint8Array> {
  const toolkit = await wabt();
  const parsed = toolkit.parseWat("_kernels.wat", source, { simd: true });
  try {
    parsed.validate();
    return new Uint8Array(parsed.toBinary({}).buffer);
  } finally {
    parsed.destroy();
  }
}

/**
 * The TypeScript module that carries the bytes.
 *
 * @param bytes the binary module
 * @returns the source of lib/schedulers/_kernels_wasm.ts
 */
export function kernelsModuleSource(bytes: Uint8Array): string {
  const base64 = btoa(String.fromCharCode(...bytes));
  const lines = base64.match(/.{1,100}/g) ?? [];
  return `/**
 * The bytes of lib/schedulers/_kernels.wat, assembled by \`bun tools/build_kernels_wasm.ts\` (do not edit by hand).
 *
 * @module
 */

/** The WebAssembly module of the fused step, base64. */
export const KERNELS_WASM_BASE64 =
${lines.map((line) => `  "${line}"`).join(" +\n")};
`;
}

if (import.meta.main) {
  const root = new URL("../", import.meta.url).pathname;
  const bytes = await assembleKernels(readFileSync(`${root}lib/schedulers/_kernels.wat`, "utf8"));
  writeFileSync(`${root}lib/schedulers/_kernels_wasm.ts`, kernelsModuleSource(bytes));
  console.log(`lib/schedulers/_kernels_wasm.ts: ${bytes.length} bytes`);
}
