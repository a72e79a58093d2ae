#!/usr/bin/env bash
# Regenerates the protobuf and gRPC stubs from ../../proto with grpcio-tools
# (pip install grpcio-tools==1.85.1). The .proto files are copied under this
# package's name first: generated from their own paths, the stubs would import
# `io.prometheus.client`, which shadows Python's `io` module. The protobuf
# package names (io.prometheus.client, aggregation_gateway.v1) stay the same,
# so messages are wire- and name-identical.
set -euo pipefail
cd "$(dirname "$0")"
python=${PYTHON:-python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pkg=prom_aggregation_gateway_client/pb
mkdir -p "$tmp/$pkg"
cp ../../proto/io/prometheus/client/metrics.proto "$tmp/$pkg/metrics.proto"
sed 's#import "io/prometheus/client/metrics.proto";#import "prom_aggregation_gateway_client/pb/metrics.proto";#' \
  ../../proto/aggregation_gateway/v1/gateway.proto > "$tmp/$pkg/gateway.proto"
"$python" -m grpc_tools.protoc -I"$tmp" --python_out=src --pyi_out=src --grpc_python_out=src \
  "$tmp/$pkg/metrics.proto" "$tmp/$pkg/gateway.proto"
rm -f "src/$pkg/metrics_pb2_grpc.py"
touch "src/$pkg/__init__.py"
