#!/usr/bin/env bash
# Pack what a GPU machine lacks for bench/gpu.ts (it has no Node.js, no network and no node_modules) into .gpu/,
# and the Vulkan loader .deb files into .gl/. Run here, from anywhere in the repository:
#
#   bash bench/gpu/pack.sh            # writes .gpu/ and .gl/, prints the sizes
#   bash bench/gpu/pack.sh --no-gl    # .gpu/ only (no apt-get)
#
# .gpu/ holds:
#   bun.tar.xz           the Bun binary (runs bench/gpu.ts as TypeScript; loads onnxruntime-node's N-API addon)
#   node_modules.tar.xz  onnxruntime-node (linux/x64 only: the binding and libonnxruntime.so.1, which holds the
#                        WebGPU provider with Dawn built in), onnxruntime-common, onnx-proto, protobufjs (runtime
#                        files) with @protobufjs/* and long, cli-progress with its dependencies
#                        and a stand-in for @napi-rs/canvas (see below)
#   builtin-cache.tar.xz builtin:shapes32's compiled graph (DDIMLAB_CACHE layout)
#   google-ddpm-celebahq-256.json  the UNet config (test/fixtures is not carried)
# .gl/ holds the Debian packages the device notes name for Vulkan/EGL: libvulkan1 (the loader Dawn dlopens as
# libvulkan.so.1) and libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 (what the NVIDIA ICD's library needs).
#
# Why Bun and not `node` (v20): Node 20 cannot run .ts files (no --experimental-strip-types), so it would need a
# bundling step; Bun runs the sources as the tests do. Sizes: bun 36.2 MiB (xz -9), node 23.1 MiB (xz -6); with
# onnxruntime-node (12.1 MiB) everything carried stays near 49 MiB.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
with_gl=1
[[ "${1:-}" == "--no-gl" ]] && with_gl=0

limit_mib=60
config=test/fixtures/unet/configs/google-ddpm-celebahq-256.json
bun_bin=$(readlink -f node_modules/.bin/bun)
[[ -x "$bun_bin" ]] || { echo "pack.sh: no Bun binary at node_modules/.bin/bun" >&2; exit 1; }
[[ -f "$config" ]] || { echo "pack.sh: the celebahq-256 config is missing at $config" >&2; exit 1; }
ort_x64=onnxruntime-node/bin/napi-v6/linux/x64
[[ -f "node_modules/$ort_x64/libonnxruntime.so.1" ]] || { echo "pack.sh: node_modules/$ort_x64/libonnxruntime.so.1 is missing" >&2; exit 1; }

# Keep .gpu/ and .gl/ out of git here without touching .gitignore.
exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")"
for p in /.gpu/ /.gl/; do grep -qxF "$p" "$exclude" 2>/dev/null || echo "$p" >>"$exclude"; done

mkdir -p .gpu
find .gpu -mindepth 1 ! -name bun.tar.xz -exec rm -rf {} +
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
export XZ_OPT="-9 -T0"

# 1. the runtime (about 3 minutes of xz on 2 cores; an archive of the same Bun version is kept)
bun_version=$("$bun_bin" --version)
if [[ -f .gpu/bun.tar.xz && "$(tar -xOJf .gpu/bun.tar.xz BUN_VERSION 2>/dev/null)" == "$bun_version" ]]; then
  echo "keeping .gpu/bun.tar.xz (Bun $bun_version)"
else
  rm -f .gpu/bun.tar.xz
  mkdir -p "$stage/runtime/bin"
  cp "$bun_bin" "$stage/runtime/bin/bun"
  echo "$bun_version" >"$stage/runtime/BUN_VERSION"
  tar -C "$stage/runtime" -cJf .gpu/bun.tar.xz BUN_VERSION bin
fi

# 2. node_modules: only the runtime files of the packages bench/gpu.ts reaches
nm="$stage/nm/node_modules"
mkdir -p "$nm"
copy() { # copy PACKAGE-RELATIVE-PATH... from node_modules into the stage
  for p in "$@"; do
    mkdir -p "$nm/$(dirname "$p")"
    cp -a "node_modules/$p" "$nm/$p"
  done
}
copy onnxruntime-node/package.json onnxruntime-node/dist "$ort_x64"
copy onnxruntime-common/package.json onnxruntime-common/dist
copy onnx-proto/package.json onnx-proto/dist
copy protobufjs/package.json protobufjs/index.js protobufjs/minimal.js protobufjs/light.js protobufjs/src protobufjs/google
for d in node_modules/@protobufjs/*; do copy "${d#node_modules/}"; done
copy long
# cli-progress (lib/io/progress.ts imports it) and what it requires, read from the installed package.json files
deps() { node -e 'const p=require(process.argv[1]);console.log(Object.keys(p.dependencies||{}).join("\n"))' "$root/node_modules/$1/package.json"; }
queue=(cli-progress)
seen=" "
while ((${#queue[@]})); do
  pkg=${queue[0]}
  queue=("${queue[@]:1}")
  [[ "$seen" == *" $pkg "* ]] && continue
  seen+="$pkg "
  [[ -d "node_modules/$pkg" ]] || { echo "pack.sh: $pkg (needed by cli-progress) is not installed" >&2; exit 1; }
  copy "$pkg"
  while read -r dep; do [[ -n "$dep" ]] && queue+=("$dep"); done < <(deps "$pkg")
done
# @napi-rs/canvas (lib/models/shapes_dataset.ts imports it) is a 35 MB native addon used only to draw the shapes that
# builtin:shapes32 is fitted to. The benchmark loads that model from the cache packed below, so a stand-in that
# throws a clear error travels instead.
mkdir -p "$nm/@napi-rs/canvas"
cat >"$nm/@napi-rs/canvas/package.json" <<'JSON'
{ "name": "@napi-rs/canvas", "version": "0.0.0-ddimlab-gpu-stand-in", "main": "index.js" }
JSON
cat >"$nm/@napi-rs/canvas/index.js" <<'JS'
"use strict";
function missing() {
  throw new Error("@napi-rs/canvas was not carried to this machine (bench/gpu/pack.sh packs a stand-in); the builtin model cache in .gpu/ is stale: run bench/gpu/pack.sh again");
}
module.exports = { createCanvas: missing, loadImage: missing, Canvas: class { constructor() { missing(); } }, Image: class { constructor() { missing(); } } };
JS
touch "$nm/.ddimlab-gpu-pack" # run.sh only replaces a node_modules/ that carries this marker
find "$nm" -name '*.map' -delete
find "$nm" -name '*.d.ts' -delete
tar -C "$stage/nm" -cJf .gpu/node_modules.tar.xz node_modules

# 3. builtin:shapes32, compiled here into a cache folder (run.sh points DDIMLAB_CACHE at it)
DDIMLAB_CACHE="$stage/cache/ddimlab" node_modules/.bin/bun -e \
  'const { builtinModel } = await import(process.argv[1]); await builtinModel("shapes32");' "$root/lib/builtin_models.ts"
tar -C "$stage/cache" -cJf .gpu/builtin-cache.tar.xz ddimlab

# 4. the celebahq-256 config
cp "$config" .gpu/google-ddpm-celebahq-256.json

# 5. the Vulkan loader and GL libraries (the device notes' recipe), as amd64 .deb files
if ((with_gl)); then
  mkdir -p .gl /tmp/amd64/partial
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  # shellcheck disable=SC2086
  apt-get $o update >/dev/null
  rm -f .gl/*.deb
  # shellcheck disable=SC2086
  (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
fi

# 6. sizes: everything that travels beside the tracked files must stay under the limit
echo "packed:"
ls -l .gpu .gl 2>/dev/null | grep -v '^total' || true
carried=$(du -cb .gpu $([[ -d .gl ]] && echo .gl) | tail -1 | cut -f1)
tree=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
awk -v c="$carried" -v t="$tree" -v l="$limit_mib" 'BEGIN {
  printf "carried (.gpu + .gl): %.1f MiB; tracked files: %.1f MiB; together %.1f MiB (limit %d MiB for carried files, 64 MiB in all)\n",
    c / 1048576, t / 1048576, (c + t) / 1048576, l
  if (c / 1048576 > l || (c + t) / 1048576 > 64) { print "pack.sh: too large" > "/dev/stderr"; exit 1 }
}'
