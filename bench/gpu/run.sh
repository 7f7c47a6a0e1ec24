#!/usr/bin/env bash
# The one command on a GPU machine (x86-64 Linux, NVIDIA driver, no Node.js, no network, PyTorch in python3):
#
#   bash bench/gpu/run.sh [bench/gpu.ts options, e.g. --quick or --models shapes32]
#
# with .gpu/ (from bench/gpu/pack.sh) and .gl/ (the Vulkan loader .deb files) beside the repository's files
# (carry both; about 49 MiB). A full run takes about 3 to 6 minutes; --quick shortens it.
# It unpacks the Bun runtime and node_modules, installs the Vulkan loader when none is there, points the loader at
# the NVIDIA ICD, prints nvidia-smi and vulkaninfo --summary (when present), then runs bench/gpu.ts (WebGPU and
# CPU providers) and bench/gpu_torch.py (the PyTorch peer). Results go to $OUT when set, else out/gpu:
# run.log, gpu.json, gpu.md, torch.json, torch.md.
#
# Environment: DDIMLAB_GPU_HOME (where Bun is unpacked, default /tmp/ddimlab-gpu), GPU_TS_TIMEOUT (s, default
# 360), GPU_TORCH_TIMEOUT (s, default 150), DDIMLAB_GPU_NO_GL (set: never unpack .gl/*.deb into /, for trying the
# script on a machine of one's own).
set -uo pipefail
cd "$(dirname "$0")/../.."
out_dir=${OUT:-out/gpu}
mkdir -p "$out_dir"
exec > >(tee "$out_dir/run.log") 2>&1
home=${DDIMLAB_GPU_HOME:-/tmp/ddimlab-gpu}
started=$SECONDS
section() { printf '\n== %s (%ss) ==\n' "$1" "$((SECONDS - started))"; }

section "unpack"
for f in .gpu/bun.tar.xz .gpu/node_modules.tar.xz .gpu/builtin-cache.tar.xz .gpu/google-ddpm-celebahq-256.json; do
  [[ -f "$f" ]] || { echo "run.sh: $f is missing: run bash bench/gpu/pack.sh on a machine with node_modules and carry .gpu"; exit 1; }
done
mkdir -p "$home"
tar -C "$home" -xJf .gpu/bun.tar.xz
bun="$home/bin/bun"
echo "bun $("$bun" --version)"
if [[ -d node_modules && ! -f node_modules/.ddimlab-gpu-pack ]]; then
  echo "node_modules/ is already here (not from the pack): using it as it is"
else
  rm -rf node_modules
  tar -xJf .gpu/node_modules.tar.xz
  echo "node_modules unpacked: $(ls node_modules | tr '\n' ' ')"
fi

cache="$home/cache"
mkdir -p "$cache"
tar -C "$cache" -xJf .gpu/builtin-cache.tar.xz
export DDIMLAB_CACHE="$cache/ddimlab"
echo "DDIMLAB_CACHE=$DDIMLAB_CACHE: $(ls "$DDIMLAB_CACHE/builtin" | tr '\n' ' ')"

section "Vulkan"
if ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1'; then
  echo "Vulkan loader already installed"
elif [[ -n "${DDIMLAB_GPU_NO_GL:-}" ]]; then
  echo "DDIMLAB_GPU_NO_GL is set: not installing .gl/*.deb"
elif compgen -G ".gl/*.deb" >/dev/null; then
  if [[ $(id -u) -eq 0 ]]; then
    # The device notes' recipe: these Debian packages unpack into / safely; no other package should.
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
    echo "installed from .gl: $(ls .gl | tr '\n' ' ')"
  else
    echo "not root: cannot unpack .gl/*.deb into /; WebGPU will report that it finds no Vulkan loader"
  fi
else
  echo "no Vulkan loader and no .gl/*.deb to install one: WebGPU will report it"
fi
ldconfig -p 2>/dev/null | grep -E 'libvulkan|libGLX_nvidia|libEGL_nvidia' || echo "(ldconfig lists no libvulkan / NVIDIA GL libraries)"
if [[ -z "${VK_DRIVER_FILES:-}" && -z "${VK_ICD_FILENAMES:-}" ]]; then
  for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json \
    /etc/vulkan/icd.d/nvidia_icd.json; do
    if [[ -f "$icd" ]]; then
      export VK_DRIVER_FILES=$icd VK_ICD_FILENAMES=$icd # the second for loaders older than 1.3.207
      break
    fi
  done
fi
egl=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
[[ -z "${__EGL_VENDOR_LIBRARY_FILENAMES:-}" && -f "$egl" ]] && export __EGL_VENDOR_LIBRARY_FILENAMES=$egl
echo "VK_DRIVER_FILES=${VK_DRIVER_FILES:-(unset)}"
[[ -n "${VK_DRIVER_FILES:-}" ]] && cat "$VK_DRIVER_FILES"

section "GPU"
if command -v nvidia-smi >/dev/null; then nvidia-smi; else echo "nvidia-smi: not present"; fi
if command -v vulkaninfo >/dev/null; then timeout 60 vulkaninfo --summary; else echo "vulkaninfo: not present"; fi

section "bench/gpu.ts"
status=0
timeout "${GPU_TS_TIMEOUT:-360}" "$bun" bench/gpu.ts --config .gpu/google-ddpm-celebahq-256.json --out "$out_dir" "$@" || {
  status=$?
  echo "bench/gpu.ts exited with status $status"
}

section "bench/gpu_torch.py"
if command -v python3 >/dev/null; then
  PYTHONUNBUFFERED=1 timeout "${GPU_TORCH_TIMEOUT:-150}" python3 bench/gpu_torch.py \
    --config .gpu/google-ddpm-celebahq-256.json --out "$out_dir" || {
    s=$?
    echo "bench/gpu_torch.py exited with status $s"
    ((status == 0)) && status=$s
  }
else
  echo "python3: not present, no PyTorch peer figure"
fi

section "done"
ls -l "$out_dir"
exit "$status"
