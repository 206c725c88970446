#!/usr/bin/env bash
# Create ./.venv (Python 3.11+) and install the project with its pinned dependencies.
# Set TORCH_INDEX_URL (e.g. https://download.pytorch.org/whl/cpu) to pick a torch build first.
set -euo pipefail
cd "$(dirname "$0")/.."

pick_python() {
  for candidate in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "Python 3.11 or newer is required (set PYTHON=/path/to/python3.11)" >&2
  return 1
}

if [ ! -x .venv/bin/python ]; then
  "$(pick_python)" -m venv .venv
fi
if [ -n "${TORCH_INDEX_URL:-}" ]; then
  .venv/bin/python -m pip install -q "torch==2.13.0" --index-url "$TORCH_INDEX_URL"
fi
# Quiet install; pip's warnings about optional local indexes are noise here.
.venv/bin/python -m pip install -q -e ".[dev,k8s]" 2>&1 | grep -v "^WARNING: Location" || true
# dagster-k8s / dagster-postgres without their dagster==1.13.27 pin (why: the file's header).
.venv/bin/python -m pip install -q --no-deps -r deploy/requirements-dagster-integrations.txt 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import dagster, pipelines, dagster_k8s" # fail here, not later, if the install broke
