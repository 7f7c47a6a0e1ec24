import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { VERSION } from "../lib/version.ts";

const read = (name: string) => readFileSync(new URL(`../${name}`, import.meta.url), "utf8");

test("VERSION is package.json's version, and deno.json names the same one", () => {
  expect(VERSION).toBe(JSON.parse(read("package.json")).version);
  expect(JSON.parse(read("deno.json")).version).toBe(VERSION);
  expect(VERSION).toMatch(/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/);
});

test("the changelog has an Unreleased section above a section for VERSION", () => {
  const headings = read("CHANGELOG.md").split("\n").filter((line) => line.startsWith("## "));
  expect(headings[0]).toBe("## [Unreleased]");
  expect(headings.some((line) => line.startsWith(`## [${VERSION}] - `))).toBe(true);
});
