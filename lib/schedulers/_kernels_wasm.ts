/**
 * The bytes of lib/schedulers/_kernels.wat, assembled by `bun tools/build_kernels_wasm.ts` (do not edit by hand).
 *
 * @module
 */

/** The WebAssembly module of the fused step, base64. */
export const KERNELS_WASM_BASE64 =
  "AGFzbQEAAAABFAFgD39/f39/f319fX19fX19fwF9AwIBAAUDAQABBxICBm1lbW9yeQIABWZ1c2VkAAAKkgIBjwICAn8NeyAG/RMh" +
  "ESAH/RMhEiAI/RMhEyAJ/RMhFCAK/RMhFSAL/RMhFiAM/RMhFyAN/RMhGEMAAAAA/RMhHSAFQQJ0IRBBACEPAkADQCAPIBBPDQEg" +
  "ASAPav0ABAAhGSAAIA9q/QAEACEaIBEgGf3mASASIBr95gH95AEgE/3rASAU/eoBIRsgFSAb/eYBIBYgGf3mAf3kASAXIBr95gH9" +
  "5AEhHCAOBEAgHCAYIAIgD2r9AAQA/eYB/eQBIRwLIB0gGiAa/eUBIBwgHP3lAf3kAf3kASEdIAMgD2ogG/0LBAAgBCAPaiAc/QsE" +
  "ACAPQRBqIQ8MAAsLIB39HwAgHf0fAZIgHf0fAiAd/R8DkpIL";
