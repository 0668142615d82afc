#!/usr/bin/env bash
# Regenerates the protobuf module for the V2 gRPC protocol from modelplane/protocol/grpc/inference.proto.
# The runtime-version check protoc emits is removed: the generated code uses only the builder API
# every protobuf release since 4.21 has, and the check would tie users to protobuf >= this protoc.
# The messages live in a private descriptor pool, so a process can also import other V2 stubs of
# package `inference` (tritonclient's, say) without a duplicate-symbol clash.
set -euo pipefail
cd "$(dirname "$0")/.."
out=modelplane/protocol/grpc
python3 -m grpc_tools.protoc -I "$out" --python_out="$out" --pyi_out="$out" "$out/inference.proto"
python3 - "$out/inference_pb2.py" <<'PY'
import re, sys
path = sys.argv[1]
source = open(path).read()
source = re.sub(r"from google\.protobuf import runtime_version as _runtime_version\n", "", source)
source = re.sub(r"_runtime_version\.ValidateProtobufRuntimeVersion\([^)]*\)\n", "", source)
source = source.replace("_descriptor_pool.Default().AddSerializedFile(", "_descriptor_pool.DescriptorPool().AddSerializedFile(")
open(path, "w").write(source)
PY
