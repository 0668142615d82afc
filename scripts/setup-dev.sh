#!/usr/bin/env bash
# Installs everything the test suite needs: the package with its dev extra, a Java runtime and the
# docker-registry server (Debian's) when they are not installed, the npm-packaged servers the storage
# tests start (Azurite) into .cache/npm, and KServe's SDK in a virtualenv of its own (.venvs/kserve-sdk).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet -e ".[dev]"
# TF Serving's gRPC messages, of the TensorFlow the dev extra pins: on their own, as their package asks for
# the `tensorflow` distribution, which tensorflow-cpu does not stand for (pyproject.toml).
python3 -m pip install --quiet --no-deps "tensorflow-serving-api==2.21.0"
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
# KServe's SDK, for the tests that run programs written with it as a KServe user runs them: in a virtualenv
# of its own, as its dependencies (FastAPI, pandas, its own grpcio and protobuf) would change the main one.
if [ ! -x .venvs/kserve-sdk/bin/python ]; then
    python3 -m venv .venvs/kserve-sdk
fi
.venvs/kserve-sdk/bin/python -m pip install --quiet "kserve==0.21.0"
