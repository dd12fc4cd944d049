#!/usr/bin/env bash
# The main demo: install what is missing, build, then run the showcase
# (examples/showcase.c): a server and a client in one process, WebSocket
# over HTTP/2 over TLS (RFC 8441) and TLS inside a WebSocket, every layer
# of both ends printed with what crossed it. Then the same RFC 8441 stack
# once more with the strata command-line tool.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSTRATA_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" >/dev/null

tmp=$(mktemp -d)
server=
cleanup() {
  [ -z "$server" ] || kill "$server" 2>/dev/null || true
  rm -rf -- "$tmp"
}
trap cleanup EXIT

# Run a command quietly; on failure show what it said and stop.
quiet() {
  "$@" >"$tmp/log" 2>&1 || { cat "$tmp/log" >&2; exit 1; }
}

# A throwaway CA and a certificate it signs for 127.0.0.1 (P-256 keys,
# valid for a day), in the temporary folder removed at exit.
quiet openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -noenc \
  -keyout "$tmp/ca.key" -out "$tmp/ca.pem" -days 1 -subj "/CN=strata demo CA" \
  -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign"
quiet openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -noenc \
  -keyout "$tmp/server.key" -out "$tmp/server.csr" -subj "/CN=127.0.0.1"
printf '%s\n' "basicConstraints=critical,CA:FALSE" \
  "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" \
  "subjectAltName=IP:127.0.0.1,DNS:localhost" >"$tmp/server.ext"
quiet openssl x509 -req -in "$tmp/server.csr" -CA "$tmp/ca.pem" \
  -CAkey "$tmp/ca.key" -days 1 -extfile "$tmp/server.ext" -out "$tmp/server.pem"

echo "== the showcase (examples/showcase.c)"
build/showcase "$tmp/ca.pem" "$tmp/server.pem" "$tmp/server.key"

echo
echo "== the same RFC 8441 stack with the strata tool: an echo server, and"
echo "   two lines through it as WebSocket messages (the client's log: -v)"
: >"$tmp/listen.log"  # there before the server writes, for sed below
build/strata listen "ws+h2+tls://127.0.0.1:0" --echo -v \
  --cert "$tmp/server.pem" --key "$tmp/server.key" 2>>"$tmp/listen.log" &
server=$!
port=
for _ in $(seq 50); do  # its -v log names the port it got
  port=$(sed -n 's/.* port \([0-9][0-9]*\)$/\1/p' "$tmp/listen.log")
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { cat "$tmp/listen.log" >&2; exit 1; }
printf 'hello\nthrough ws+h2+tls\n' |
  build/strata connect "ws+h2+tls://127.0.0.1:$port/chat" --ca "$tmp/ca.pem" -v
