#!/usr/bin/env bash
# What the web client tests (tests/e2e/test_js_sdk.py, test_js_sliding_sync.py,
# test_hydrogen.py) need: npm and Debian's chromium (installed with apt when
# missing), then the pinned packages: matrix-js-sdk, Hydrogen, Playwright and,
# on x86-64 Linux, Node.js 22.
set -euo pipefail
cd "$(dirname "$0")"
missing=()
command -v npm >/dev/null || missing+=(nodejs npm)
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
    sudo=(); [ "$(id -u)" = 0 ] || sudo=(sudo)
    "${sudo[@]}" apt-get update -q && "${sudo[@]}" apt-get install -y -q "${missing[@]}"
fi
npm ci --no-audit --no-fund --loglevel=error
