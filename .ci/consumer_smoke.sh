#!/usr/bin/env bash
# The package as a consumer gets it, checked in empty folders outside the checkout:
#   1. npm + Bun: `npm pack` the checkout, `bun add` the tarball, run a script that imports "ddimlab" by name and
#      saves a PNG, then the installed command (`bunx ddimlab --version`, `models`, `sample --quiet`).
#   2. JSR + Deno: `deno publish --dry-run` passes without warnings; exactly the files it would upload are linked into
#      a Deno project ("links" in deno.json) that imports jsr:@ddimlab/ddimlab; the same script, and the command
#      through jsr:@ddimlab/ddimlab/cli; the script also type-checks under Deno's default compiler options (no "dom"
#      lib, which the package's own deno.json adds). That project has no package.json or node_modules: Deno fetches the npm
#      dependencies named in the package's deno.json into its own cache, as for a user of the published package.
#   3. Script and command sample the same batch (builtin:shapes32, DDIM eta 0, 20 steps, seed 0, 4 images), so the
#      four PNGs must be byte-identical to the checkout's own `bun lib/cli.ts sample`.
# Deno is not run on the npm tarball: Deno, like Node, refuses TypeScript inside node_modules
# (ERR_UNSUPPORTED_NODE_MODULES_TYPE_STRIPPING), so Deno users install from JSR.
# Network: only the npm registry, for dependencies that Bun's and Deno's caches lack (retried).
# Prints one line per check, "consumer: ok ..." or "consumer: FAIL ...", and exits 1 if any check failed.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bun="$root/node_modules/.bin/bun"
deno="$root/node_modules/.bin/deno"
version=$(node -p 'require(process.argv[1]).version' "$root/package.json")

work=$(mktemp -d "${TMPDIR:-/tmp}/ddimlab-consumer-XXXXXX")
trap 'rm -rf "$work"' EXIT
# The installed bin runs through its shebang (#!/usr/bin/env bun): the checkout's bun and deno go on PATH.
mkdir -p "$work/bin"
ln -s "$(readlink -f "$bun")" "$work/bin/bun"
ln -s "$(readlink -f "$bun")" "$work/bin/bunx" # Bun's binary called bunx is bunx
ln -s "$(readlink -f "$deno")" "$work/bin/deno"
export PATH="$work/bin:$PATH" ONNXRUNTIME_NODE_INSTALL=skip NO_COLOR=1

failures=0
check() { # check NAME COMMAND...: run the command, report it, count a failure
  local name=$1 log="$work/log" start=$SECONDS
  shift
  if "$@" >"$log" 2>&1; then
    echo "consumer: ok   $name ($((SECONDS - start)) s)"
  else
    echo "consumer: FAIL $name"
    sed 's/^/  | /' "$log" | tail -n 20
    failures=$((failures + 1))
  fi
}
retry() { # retry COMMAND...: up to three tries, for the steps that fetch from the npm registry
  "$@" || { sleep 5 && "$@"; } || { sleep 15 && "$@"; }
}
same_png() { # same_png A B: A is a PNG with B's bytes
  [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] && cmp "$1" "$2"
}
script() { # script SPECIFIER OUTPUT: the five lines a user would write
  cat <<EOF
import { DDIMPipeline, savePng, VERSION } from "$1";
const pipe = await DDIMPipeline.fromPretrained("builtin:shapes32");
const { samples } = await pipe.sample({ numInferenceSteps: 20, eta: 0, seed: 0, batchSize: 4, progress: false });
await savePng(samples, "$2");
console.log(\`ddimlab \${VERSION}: \${samples.shape.join("x")} written to $2\`);
EOF
}
sample_args=(sample --steps 20 --eta 0 --seed 0 --batch 4 --quiet)

# 1. npm + Bun
app="$work/bun_app"
mkdir -p "$app"
cd "$app"
printf '{ "name": "consumer", "private": true, "type": "module" }\n' >package.json
printf 'onnxruntime-node-install=skip\n' >.npmrc
script ddimlab bun_script.png >bun_script.ts
check "npm pack" npm pack --silent --pack-destination "$app" "$root"
check "bun add ./ddimlab-$version.tgz" retry "$bun" add --no-progress "./ddimlab-$version.tgz"
check "bun: a script importing ddimlab saves a PNG" "$bun" bun_script.ts
check "bunx ddimlab --version prints $version" bash -c "bunx ddimlab --version | grep -qx 'ddimlab $version'"
check "bunx ddimlab models" bash -c "bunx ddimlab models | grep -q '^builtin:shapes32 '"
check "bunx ddimlab sample --quiet" bunx ddimlab "${sample_args[@]}" --out bun_cli.png

# 2. JSR + Deno
deno_app="$work/deno_app"
mkdir -p "$deno_app/jsr"
cd "$deno_app"
check "deno publish --dry-run passes without warnings" bash -c "cd '$root' &&
  deno publish --dry-run --allow-dirty >'$work/publish.log' 2>&1 && ! grep -Ei '^(warning|error)' '$work/publish.log'"
sed -n 's|^ *file://\(.*\) ([0-9.]*[KMG]*B)$|\1|p' "$work/publish.log" | while read -r file; do
  mkdir -p "jsr/$(dirname "${file#"$root"/}")"
  cp "$file" "jsr/${file#"$root"/}"
done
cat >deno.json <<EOF
{
  "nodeModulesDir": "none",
  "links": ["./jsr"],
  "imports": { "@ddimlab/ddimlab": "jsr:@ddimlab/ddimlab@^$version" }
}
EOF
script @ddimlab/ddimlab deno_script.png >deno_script.ts
cli="jsr:@ddimlab/ddimlab@^$version/cli"
check "deno: the npm dependencies named in deno.json resolve" retry deno cache deno_script.ts
check "deno check: the script type-checks with Deno's default compiler options" deno check deno_script.ts
check "deno: a script importing jsr:@ddimlab/ddimlab saves a PNG" deno run -A deno_script.ts
check "deno run $cli --version prints $version" bash -c "deno run -A '$cli' --version | grep -qx 'ddimlab $version'"
check "deno run $cli sample --quiet" deno run -A "$cli" "${sample_args[@]}" --out deno_cli.png

# 3. One image everywhere: the installed packages sample what the checkout samples.
(cd "$root" && "$bun" lib/cli.ts "${sample_args[@]}" --out "$work/checkout.png") >/dev/null 2>&1
for png in "$app/bun_script.png" "$app/bun_cli.png" "$deno_app/deno_script.png" "$deno_app/deno_cli.png"; do
  check "$(basename "$png") is the checkout's image, byte for byte" same_png "$png" "$work/checkout.png"
done

[ "$failures" -eq 0 ]
