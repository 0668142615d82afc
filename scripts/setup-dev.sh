#!/usr/bin/env bash
# Installs everything the test suite needs: the package with its dev extra, a Java runtime (Debian's)
# when none is installed, and the npm-packaged servers the storage tests start (Azurite) into .cache/npm.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet -e ".[dev]"
# The pmml runtime evaluates models with JPMML, in a Java VM.
if ! command -v java >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq default-jre-headless >/dev/null
fi
if command -v npm >/dev/null 2>&1 && [ ! -x .cache/npm/node_modules/.bin/azurite-blob ]; then
    mkdir -p .cache/npm
    npm install --silent --no-audit --no-fund --prefix .cache/npm azurite@3 >/dev/null
fi
