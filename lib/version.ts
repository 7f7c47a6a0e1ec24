/**
 * The package's version, read from package.json so that it is written in one place: `ddimlab --version` prints it,
 * and a test checks that deno.json (the JSR manifest) and CHANGELOG.md name the same version.
 *
 * @module
 */
import packageJson from "../package.json" with { type: "json" };

/**
 * The version of ddimlab, as package.json states it (semantic versioning: MAJOR.MINOR.PATCH).
 *
 * @example
 * ```ts
 * import { VERSION } from "./version.ts";
 * import { readFileSync } from "node:fs";
 * if (VERSION !== JSON.parse(readFileSync("package.json", "utf8")).version) throw new Error("package.json disagrees");
 * ```
 */
export const VERSION: string = packageJson.version;
