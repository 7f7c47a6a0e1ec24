/**
 * Writes `docs/api.md`, the API reference, from the JSDoc of everything `mod.ts` exports.
 *
 * Run with `deno run -A docs/build_api.ts` (or `npm run docs:api`). It asks `deno doc --json` for the symbols, groups
 * them by the `lib/` file that defines them (in `mod.ts`'s export order) and renders each as a signature plus its
 * documentation, so the reference reads on a code host without a browser build.
 *
 * @module
 */

// deno-lint-ignore-file no-explicit-any
type Json = any;

const root = new URL("../", import.meta.url);
const denoBinary = new URL("node_modules/.bin/deno", root).pathname;

async function denoDocJson(): Promise<Json> {
  const command = new Deno.Command(denoBinary, {
    args: ["doc", "--json", "mod.ts"],
    cwd: root.pathname,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  });
  const { code, stdout, stderr } = await command.output();
  if (code !== 0) throw new Error(`deno doc failed: ${new TextDecoder().decode(stderr)}`);
  return JSON.parse(new TextDecoder().decode(stdout));
}

/** Render a type node of `deno doc --json` back to TypeScript. */
function typeText(node: Json): string {
  if (!node) return "unknown";
  const value = node.value;
  switch (node.kind) {
    case "keyword":
      return value;
    case "literal":
      if (value.kind === "string") return JSON.stringify(value.string);
      if (value.kind === "template") return node.repr ? `\`${node.repr}\`` : "string";
      return String(value.number ?? value.boolean ?? value.bigint ?? node.repr);
    case "typeRef": {
      const params = value.typeParams?.length ? `<${value.typeParams.map(typeText).join(", ")}>` : "";
      return `${value.typeName}${params}`;
    }
    case "array": {
      const inner = typeText(value);
      return /[|&\s]/.test(inner) && !inner.startsWith("{") ? `(${inner})[]` : `${inner}[]`;
    }
    case "union":
      return value.map(typeText).join(" | ");
    case "intersection":
      return value.map(typeText).join(" & ");
    case "typeOperator":
      return `${value.operator} ${typeText(value.tsType)}`;
    case "parenthesized":
      return `(${typeText(value)})`;
    case "tuple":
      return `[${value.map(typeText).join(", ")}]`;
    case "fnOrConstructor":
      return `${value.constructor ? "new " : ""}(${paramsText(value.params)}) => ${typeText(value.tsType)}`;
    case "typeLiteral":
      return `{ ${membersInline(value)} }`;
    case "typeQuery":
      return `typeof ${value}`;
    case "indexedAccess":
      return `${typeText(value.objType)}[${typeText(value.indexType)}]`;
    case "importType":
      return `import("${value.specifier}")${value.qualifier ? "." + value.qualifier : ""}`;
    case "this":
      return "this";
    default:
      return node.repr || node.kind;
  }
}

function membersInline(literal: Json): string {
  const properties = (literal.properties ?? []).map((p: Json) =>
    `${p.readonly ? "readonly " : ""}${p.name}${p.optional ? "?" : ""}: ${typeText(p.tsType)}`
  );
  const methods = (literal.methods ?? []).map((m: Json) =>
    `${m.name}(${paramsText(m.params)}): ${typeText(m.returnType)}`
  );
  return [...properties, ...methods].join("; ");
}

function paramText(param: Json): string {
  const type = param.tsType ? `: ${typeText(param.tsType)}` : "";
  switch (param.kind) {
    case "identifier":
      return `${param.name}${param.optional ? "?" : ""}${type}`;
    case "assign": {
      const left = param.left ?? {};
      const leftType = left.tsType ?? param.tsType;
      const name = left.kind === "identifier" ? left.name : "options";
      return `${name}?${leftType ? `: ${typeText(leftType)}` : ""}`;
    }
    case "rest":
      return `...${paramText(param.arg)}${type}`;
    case "object":
      return `{ ${(param.props ?? []).map((p: Json) => p.key ?? p.name ?? "…").join(", ")} }${type}`;
    case "array":
      return `[…]${type}`;
    default:
      return `${param.name ?? "arg"}${type}`;
  }
}

function paramsText(params: Json[] = []): string {
  return params.map(paramText).join(", ");
}

function typeParamsText(typeParams: Json[] = []): string {
  if (!typeParams.length) return "";
  return `<${
    typeParams.map((p: Json) => `${p.name}${p.constraint ? ` extends ${typeText(p.constraint)}` : ""}`).join(", ")
  }>`;
}

function firstParagraph(doc = ""): string {
  return doc.trim().split(/\n\s*\n/)[0].replace(/\s*\n\s*/g, " ");
}

function tagsOf(jsDoc: Json, kind: string): Json[] {
  return (jsDoc?.tags ?? []).filter((t: Json) => t.kind === kind);
}

function signature(name: string, declaration: Json): string {
  const def = declaration.def;
  switch (declaration.kind) {
    case "function":
      return `function ${name}${typeParamsText(def.typeParams)}(${paramsText(def.params)}): ${
        typeText(def.returnType)
      }`;
    case "variable":
      return `${def.kind} ${name}: ${typeText(def.tsType)}`;
    case "typeAlias":
      return `type ${name}${typeParamsText(def.typeParams)} = ${typeText(def.tsType)}`;
    case "interface": {
      const extendsText = def.extends?.length ? ` extends ${def.extends.map(typeText).join(", ")}` : "";
      return `interface ${name}${typeParamsText(def.typeParams)}${extendsText}`;
    }
    case "class": {
      const extendsText = def.extends ? ` extends ${def.extends}` : "";
      return `class ${name}${typeParamsText(def.typeParams)}${extendsText}`;
    }
    default:
      return `${declaration.kind} ${name}`;
  }
}

function memberLines(declaration: Json): string[] {
  const def = declaration.def;
  const lines: string[] = [];
  const describe = (text: string, jsDoc: Json) => {
    const summary = firstParagraph(jsDoc?.doc);
    lines.push(`- \`${text}\`${summary ? ` — ${summary}` : ""}`);
  };
  if (declaration.kind === "class") {
    for (const c of def.constructors ?? []) {
      if (c.accessibility === "private") continue;
      describe(`new ${declaration.name ?? ""}(${paramsText(c.params)})`.replace("new (", "constructor("), c.jsDoc);
    }
    for (const p of def.properties ?? []) {
      if (p.accessibility === "private" || p.name.startsWith("#")) continue;
      describe(
        `${p.isStatic ? "static " : ""}${p.readonly ? "readonly " : ""}${p.name}: ${typeText(p.tsType)}`,
        p.jsDoc,
      );
    }
    for (const m of def.methods ?? []) {
      if (m.accessibility === "private" || m.name.startsWith("#")) continue;
      const f = m.functionDef;
      const prefix = `${m.isStatic ? "static " : ""}${
        m.kind === "getter" ? "get " : m.kind === "setter" ? "set " : ""
      }`;
      describe(
        `${prefix}${m.name}(${paramsText(f.params)})${f.returnType ? `: ${typeText(f.returnType)}` : ""}`,
        m.jsDoc,
      );
    }
  }
  if (declaration.kind === "interface") {
    for (const p of def.properties ?? []) {
      describe(`${p.readonly ? "readonly " : ""}${p.name}${p.optional ? "?" : ""}: ${typeText(p.tsType)}`, p.jsDoc);
    }
    for (const m of def.methods ?? []) {
      describe(`${m.name}(${paramsText(m.params)}): ${typeText(m.returnType)}`, m.jsDoc);
    }
  }
  return lines;
}

function renderSymbol(name: string, declaration: Json, file: string): string {
  const jsDoc = declaration.jsDoc ?? {};
  const out = [`### \`${name}\``, ""];
  out.push("```ts", signature(name, declaration), "```", "");
  if (jsDoc.doc) out.push(jsDoc.doc.trim(), "");
  const params = tagsOf(jsDoc, "param");
  if (params.length) {
    out.push(...params.map((p: Json) => `- \`${p.name}\`: ${(p.doc ?? "").replace(/\s*\n\s*/g, " ")}`), "");
  }
  for (const r of tagsOf(jsDoc, "return")) out.push(`Returns ${(r.doc ?? "").replace(/\s*\n\s*/g, " ")}`, "");
  for (const t of tagsOf(jsDoc, "throws")) out.push(`Throws ${(t.doc ?? "").replace(/\s*\n\s*/g, " ")}`, "");
  const members = memberLines({ ...declaration, name });
  if (members.length) out.push(...members, "");
  for (const example of tagsOf(jsDoc, "example")) out.push("Example:", "", example.doc.trim(), "");
  out.push(`Defined in [${file}](../${file}#L${declaration.location.line}).`, "");
  return out.join("\n");
}

async function moduleSummary(file: string): Promise<string> {
  const text = await Deno.readTextFile(new URL(file, root));
  const match = text.match(/^\/\*\*([\s\S]*?)\*\//);
  if (!match || !match[1].includes("@module")) return "";
  const body = match[1].split("\n").map((line) => line.replace(/^\s*\* ?/, "")).join("\n");
  return firstParagraph(body.replace(/@module[\s\S]*$/, ""));
}

async function main(): Promise<void> {
  const json = await denoDocJson();
  const symbols: Json[] = Object.values(json.nodes)[0] ? (Object.values(json.nodes)[0] as Json).symbols : [];
  const byFile = new Map<string, { name: string; declaration: Json }[]>();
  for (const symbol of symbols) {
    for (const declaration of symbol.declarations) {
      if (declaration.declarationKind !== "export") continue;
      const file = declaration.location.filename.replace(root.href, "");
      if (!byFile.has(file)) byFile.set(file, []);
      byFile.get(file)!.push({ name: symbol.name, declaration });
    }
  }
  const modText = await Deno.readTextFile(new URL("mod.ts", root));
  const order = [...modText.matchAll(/export \* from "\.\/(lib\/[^"]+)"/g)].map((m) => m[1]);
  const files = [...order.filter((f) => byFile.has(f)), ...[...byFile.keys()].filter((f) => !order.includes(f))];

  const out = [
    "# API reference",
    "",
    "Everything `mod.ts` exports, grouped by the file that defines it. Generated from the JSDoc by",
    "`deno run -A docs/build_api.ts` (`npm run docs:api`); do not edit by hand.",
    "",
    "## Contents",
    "",
  ];
  for (const file of files) {
    const anchor = file.replace(/[^a-z0-9_-]/gi, "").toLowerCase();
    const names = byFile.get(file)!.map((s) => `\`${s.name}\``).join(", ");
    out.push(`- [${file}](#${anchor}): ${names}`);
  }
  out.push("");
  for (const file of files) {
    out.push(`## ${file}`, "");
    const summary = await moduleSummary(file);
    if (summary) out.push(summary, "");
    const entries = byFile.get(file)!.sort((a, b) => a.declaration.location.line - b.declaration.location.line);
    for (const { name, declaration } of entries) out.push(renderSymbol(name, declaration, file));
  }
  const target = new URL("docs/api.md", root);
  await Deno.writeTextFile(target, out.join("\n").replace(/\n{3,}/g, "\n\n"));
  console.log(`wrote docs/api.md: ${symbols.length} symbols from ${files.length} files`);
}

if (import.meta.main) await main();
