#!/usr/bin/env bash
# Installs the Debian packages the benchmarks in bench/ need (run as root; apt-get update first):
#   wrk             HTTP/1.1 load generator (V2 REST runs of bench/model_server.py)
#   nghttp2-client  h2load, the HTTP/2 load generator used for gRPC (a pre-built gRPC-framed ModelInfer body)
#   nginx-light     the reference proxy of bench/gateway.py and bench/attacks.py (HTTP/1.1, HTTP/2, grpc_pass)
# The peers' Python environments (KServe, MLServer, MLServer with mlserver-mlflow) are created by the
# benchmark scripts themselves, under bench/.envs/, from pinned requirement lists in each script (a venv is
# made again when its list changes): e.g. bench/mlflow.py's mlflow-mlserver.
set -euo pipefail
missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v h2load >/dev/null 2>&1 || missing+=(nghttp2-client)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
wrk -v 2>&1 | head -1 || true
h2load --version
PATH="$PATH:/usr/sbin" nginx -v
