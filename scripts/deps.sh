#!/usr/bin/env bash
# Install what strata's build, tests and demo need, from Debian packages,
# only when missing. Run as root on Debian 12.
set -euo pipefail

pkgs=(
  build-essential cmake pkg-config      # the build
  libcmocka-dev                         # unit tests
  libwolfssl-dev zlib1g-dev             # TLS; WebSocket SHA-1/base64, deflate
  openssl                               # test certificates; TLS interop peer
  libnghttp2-dev                        # HTTP/2
  nghttp2-client nghttp2-server curl    # HTTP/2 interop peers, h2load
  python3-h2 python3-wsproto            # WebSocket over HTTP/2 peer
  python3-websockets                    # WebSocket interop peer
  libwslay-dev                          # WebSocket framing baseline (bench)
  libprotobuf-c-dev protobuf-c-compiler # gRPC messages (protoc-c)
  python3-grpcio python3-protobuf protobuf-compiler # gRPC interop peer
  libgrpc++-dev protobuf-compiler-grpc  # C++ gRPC baseline (bench)
  gcc-arm-none-eabi libnewlib-arm-none-eabi # embedded profile (Cortex-M4)
  clang-14 libclang-rt-14-dev           # sanitizers and libFuzzer
  valgrind                              # the memcheck run
  procps                                # ps/pkill in the end-to-end tests
  chromium                              # the browser test (headless)
)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
    missing+=("$p")
done
# node and npm for the node 'ws' peer: any node >= 18 on PATH will do (a
# machine may carry its own build); else Debian's.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  missing+=(nodejs npm)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
