#!/usr/bin/env bash
# Regenerate adapters/mqtt/sparkplug/sparkplug_b_pb2.py(.pyi) from sparkplug_b.proto.
# Needs the dev extras (grpcio-tools); run from anywhere: bash scripts/gen_sparkplug.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
DIR=adapters/mqtt/sparkplug
"$PYTHON" -m grpc_tools.protoc \
    --proto_path="$DIR" \
    --python_out="$DIR" \
    --pyi_out="$DIR" \
    "$DIR/sparkplug_b.proto"
echo "generated $DIR/sparkplug_b_pb2.py and $DIR/sparkplug_b_pb2.pyi"
