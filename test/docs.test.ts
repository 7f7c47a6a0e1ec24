import { expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { spawnSync } from "node:child_process";

const root = new URL("../", import.meta.url).pathname;
const deno = `${root}node_modules/.bin/deno`;

test("mod.ts and every JSDoc @example in lib/ type-check under Deno", () => {
  // lib/*.ts and the layer folders lib/*/*.ts (as package.json's check script)
  const files = readdirSync(`${root}lib`, { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".ts") && f.split("/").length <= 2)
    .map((f) => `lib/${f}`);
  const run = spawnSync(deno, ["check", "--doc", "mod.ts", ...files], {
    cwd: root,
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1" },
  });
  const errors = `${run.stdout}\n${run.stderr}`.split("\n").filter((line) => /TS\d+|error:/.test(line));
  expect(errors).toEqual([]);
  expect(run.status).toBe(0);
}, 300_000);
