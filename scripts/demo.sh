#!/usr/bin/env bash
# The main demo: install what is missing, build, then start an echo server
# with the strata tool and run the example client of the README against it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSTRATA_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" >/dev/null

port=$((20000 + RANDOM % 20000))
build/strata listen "lines+tcp://127.0.0.1:$port" --echo -v &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  build/strata connect "tcp://127.0.0.1:$port" </dev/null >/dev/null 2>&1 && break
  sleep 0.1
done
echo "== example client (examples/hello_lines.c) over lines+tcp"
build/hello_lines 127.0.0.1 "$port"
echo "== the strata tool: three lines through lines+tcp and back"
printf 'one\ntwo\nthree\n' | build/strata connect "lines+tcp://127.0.0.1:$port"
