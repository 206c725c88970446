#!/usr/bin/env bash
# Set up, then run the test suite (extra arguments go to pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The UI test drives a real Chromium; install Debian's when missing and we may (root with apt).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "tests/e2e needs Chromium: install it (Debian/Ubuntu: sudo apt-get install chromium)" >&2
  fi
fi
exec .venv/bin/python -m pytest "$@"
