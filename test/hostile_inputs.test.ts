import { expect, test } from "bun:test";
import { measureHostileInputs } from "../bench/hostile_inputs.ts";

// Each hostile input of issue 13 (a 20000x20000 PNG header, a zip bomb, a huge strided view, a huge tensor claim,
// 1e8 training timesteps, a giant UNet config) runs in a fresh process and must be refused with an error that names
// the value and the limit, while the process stays within 128 MiB of one that only imports the modules.
test("every hostile input is refused before allocating: peak memory stays within 128 MiB of the baseline", () => {
  const { baselineMiB, results } = measureHostileInputs();
  expect(results.length).toBe(6);
  for (const { name, refused, peakMiB } of results) {
    expect(`${name}: ${refused === "" ? "not refused" : "refused"}`).toBe(`${name}: refused`);
    expect(refused).toMatch(/limit|truncated|zip bomb/);
    expect(`${name}: ${peakMiB - baselineMiB < 128 ? "bounded" : `${peakMiB.toFixed(0)} MiB`}`).toBe(
      `${name}: bounded`,
    );
  }
}, 120_000);
