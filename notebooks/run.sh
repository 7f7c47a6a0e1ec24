#!/usr/bin/env bash
# Execute every notebook in notebooks/ headless, in place, in order, and stop at the first one that raises.
#
# Needs Debian's nbconvert (apt-get install -y jupyter-nbconvert python3-nbclient python3-jupyter-client
# python3-ipykernel) and Deno's Jupyter kernel, which this script registers when it is missing.
# Usage: notebooks/run.sh [NOTEBOOK.ipynb ...]   (default: every notebooks/[0-9]*.ipynb)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
deno="$root/node_modules/.bin/deno"
[ -x "$deno" ] || deno="$(command -v deno || true)"

if ! command -v jupyter >/dev/null || ! jupyter nbconvert --version >/dev/null 2>&1; then
  echo "notebooks/run.sh: jupyter nbconvert is not installed (apt-get install -y jupyter-nbconvert" \
    "python3-nbclient python3-jupyter-client python3-ipykernel)" >&2
  exit 2
fi
if [ -z "$deno" ]; then
  echo "notebooks/run.sh: deno is not installed (npm install puts it in node_modules/.bin)" >&2
  exit 2
fi
# Register Deno's kernel when none is registered, or when the registered one names a deno that is gone (a clone
# that was deleted): the first kernel.json on Jupyter's path wins, so check that one.
if ! jupyter --paths --json | python3 -c 'import json,os,sys
d = json.load(sys.stdin)["data"]
specs = [os.path.join(p, "kernels", "deno", "kernel.json") for p in d]
found = [s for s in specs if os.path.exists(s)]
sys.exit(0 if found and os.access(json.load(open(found[0]))["argv"][0], os.X_OK) else 1)'; then
  "$deno" jupyter --install --force >/dev/null 2>&1
fi

cd "$here"
if [ "$#" -gt 0 ]; then notebooks=("$@"); else notebooks=([0-9]*.ipynb); fi
for notebook in "${notebooks[@]}"; do
  start=$(date +%s)
  # nbconvert exits non-zero when a cell raises (CellExecutionError): report that cell and stop.
  log="$(mktemp)"
  set +e
  jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.timeout=900 \
    --ExecutePreprocessor.kernel_name=deno "$notebook" >"$log" 2>&1
  status=$?
  set -e
  if [ "$status" -ne 0 ]; then
    # Show the failing cell and its error rather than nbconvert's Python traceback (the whole log if none).
    if grep -q "An error occurred while executing" "$log"; then sed -n '/An error occurred while executing/,$p' "$log" >&2
    else cat "$log" >&2; fi
    rm -f "$log"
    echo "notebooks/run.sh: $notebook failed" >&2
    exit "$status"
  fi
  rm -f "$log"
  echo "ran $notebook in $(( $(date +%s) - start )) s"
done
