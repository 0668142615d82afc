#!/usr/bin/env bash
# Installs everything the test suite needs: the package with its dev extra, a Java runtime and the
# docker-registry server (Debian's) when they are not installed, and the npm-packaged servers the storage
# tests start (Azurite) into .cache/npm.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet -e ".[dev]"
# Debian packages: a Java runtime (the pmml runtime evaluates models with JPMML, in a Java VM) and the
# CNCF distribution registry (the oci:// storage tests pull images from it).
missing=()
command -v java >/dev/null 2>&1 || missing+=(default-jre-headless)
command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if command -v npm >/dev/null 2>&1 && [ ! -x .cache/npm/node_modules/.bin/azurite-blob ]; then
    mkdir -p .cache/npm
    npm install --silent --no-audit --no-fund --prefix .cache/npm azurite@3 >/dev/null
fi
