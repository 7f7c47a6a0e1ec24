/**
 * Write the exact data law of a builtin image model (its Gaussian mixture) as JSON, for tools/train_ddpm.py.
 *
 * p(x_0) = sum_k pi_k N(x_0; mu_k, Q_k diag(lambda_k) Q_k^T + s2_k I)
 *
 * The trainer draws fresh, exact samples of x_0 from these parameters, so the data are infinite and seedable, and
 * every quality number of the trained model can be measured against the true law in TypeScript.
 *
 * Usage: `bun tools/export_data_law.ts shapes32 /tmp/shapes32_law.json`
 *
 * @module
 */
import { writeFileSync } from "node:fs";
import { builtinMixture, builtinModel } from "../mod.ts";

const [name, out] = process.argv.slice(2);
if (!name || !out) {
  console.error("Usage: bun tools/export_data_law.ts NAME OUT.json   (NAME: a builtin image model, e.g. shapes32)");
  process.exit(2);
}
const mixture = builtinMixture(name);
const { config } = await builtinModel(name, { cacheDir: false });
const law = {
  name,
  shape: [config.in_channels, config.sample_size, config.sample_size],
  dim: mixture.dim,
  count: mixture.count,
  rank: mixture.rank,
  weights: Array.from(mixture.weights),
  means: Array.from(mixture.means),
  bases: Array.from(mixture.bases),
  lowRankVariances: Array.from(mixture.lowRankVariances),
  noiseVariances: Array.from(mixture.noiseVariances),
};
writeFileSync(out, JSON.stringify(law));
console.log(`${name}: ${mixture.count} components, rank ${mixture.rank}, dimension ${mixture.dim} -> ${out}`);
