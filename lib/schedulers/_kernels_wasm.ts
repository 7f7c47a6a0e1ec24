/**
 * The bytes of lib/schedulers/_kernels.wat, assembled by `bun tools/build_kernels_wasm.ts` (do not edit by hand).
 *
 * @module
 */

/** The WebAssembly module of the fused step, base64. */
export const KERNELS_WASM_BASE64 =
  "AGFzbQEAAAABEgFgDX9/f399fX19fX19fX8BfQMCAQAFAwEAAQcSAgZtZW1vcnkCAAVmdXNlZAAACpICAY8CAgJ/DXsgBP0TIQ8g" +
  "Bf0TIRAgBv0TIREgB/0TIRIgCP0TIRMgCf0TIRQgCv0TIRUgC/0TIRZDAAAAAP0TIRsgA0ECdCEOQQAhDQJAA0AgDSAOTw0BIAEg" +
  "DWr9AAQAIRcgACANav0ABAAhGCAPIBf95gEgECAY/eYB/eQBIBH96wEgEv3qASEZIBMgGf3mASAUIBf95gH95AEgFSAY/eYB/eQB" +
  "IRogDARAIBogFiACIA1q/QAEAP3mAf3kASEaCyAbIBggGP3lASAaIBr95QH95AH95AEhGyAAIA1qIBn9CwQAIAEgDWogGv0LBAAg" +
  "DUEQaiENDAALCyAb/R8AIBv9HwGSIBv9HwIgG/0fA5KSCw==";
