/**
 * Private: how an error message names a value it refused (`an array of length 3`, `a Map`, `string abc`), shared by
 * the ONNX adapter and the loader.
 *
 * @module
 */

/** A short description of any value for an error message. */
export function describeValue(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  if (typeof value === "object") return `a ${(value as object).constructor?.name ?? "object"}`;
  return `${typeof value} ${String(value)}`;
}
