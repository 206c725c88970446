#!/usr/bin/env bash
# GPU-only tests (marker `gpu`), for a machine with a CUDA GPU and the project's packages.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
exec "$PYTHON" -m pytest -m gpu -o addopts="" tests/gpu "$@"
