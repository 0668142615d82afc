#!/usr/bin/env bash
# Installs everything the test suite needs: the package with its dev extra, and the
# npm-packaged servers the storage tests start (Azurite) into .cache/npm.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet -e ".[dev]"
if command -v npm >/dev/null 2>&1 && [ ! -x .cache/npm/node_modules/.bin/azurite-blob ]; then
    mkdir -p .cache/npm
    npm install --silent --no-audit --no-fund --prefix .cache/npm azurite@3 >/dev/null
fi
