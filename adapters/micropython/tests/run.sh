#!/usr/bin/env bash
# Run the MicroPython-side tests of the strata module.
# Usage: run.sh MICROPYTHON [STRATA]
#   MICROPYTHON  a micropython binary built with USER_C_MODULES=adapters/
#                micropython (or the env MICROPYTHON)
#   STRATA       the strata command-line tool, a second peer (or the env
#                STRATA); without it those cases are skipped
# Needs openssl for the test certificates (wss cases run only when the
# module has TLS) and Debian's python3-websockets for the peer cases.
# Prints every case; exits 1 if any failed.
set -u

HERE=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd -- "$HERE/../../.." && pwd)
MP=${1:-${MICROPYTHON:-}}
TOOL=${2:-${STRATA:-}}
T=120  # seconds for any one script: a hang guard

if [ -z "$MP" ] || [ ! -x "$MP" ]; then
    echo "usage: $0 MICROPYTHON [STRATA]" >&2
    exit 2
fi
MP=$(cd -- "$(dirname -- "$MP")" && pwd)/$(basename -- "$MP")

TMP=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    rm -rf -- "$TMP"
}
trap cleanup EXIT

failed=0
# run NAME ARGS...: one test script through micropython, from this folder
# (the scripts import util.py from beside them).
run() {
    local name=$1
    shift
    echo "== $name"
    if ! (cd -- "$HERE" && timeout "$T" "$MP" "$@"); then
        echo "FAILED: $name"
        failed=1
    fi
}

if ! "$MP" -c "import strata" >/dev/null 2>&1; then
    echo "FAILED: $MP has no strata module"
    exit 1
fi
tls=$("$MP" -c "import strata; print(int(strata.HAVE_TLS))")
certs=()
if [ "$tls" = 1 ]; then
    if bash "$ROOT/tests/certs/make_certs.sh" "$TMP/certs" >/dev/null; then
        certs=("$TMP/certs")
    else
        echo "FAILED: making the test certificates"
        failed=1
    fi
else
    echo "skip: wss and tls cases (the module has no TLS)"
fi

run "ws client and server" test_ws.py "${certs[@]}"
run "lines, len, tls client and server" test_records.py "${certs[@]}"

# wait_for FILE: until it holds a line (a peer's port or log line).
wait_for() {
    local i
    for i in $(seq 100); do
        [ -s "$1" ] && return 0
        sleep 0.1
    done
    return 1
}

# Debian's websockets echo server (tests/interop/ws_peer.py).
if /usr/bin/python3 -c "import websockets" 2>/dev/null; then
    /usr/bin/python3 "$ROOT/tests/interop/ws_peer.py" server "$TMP/ws.port" \
        --no-deflate &
    PIDS+=($!)
    if wait_for "$TMP/ws.port"; then
        port=$(cat "$TMP/ws.port")
        run "client vs websockets (asyncio)" test_peer.py websockets "$port" ws asyncio
        run "client vs websockets (blocking)" test_peer.py websockets "$port" ws blocking
    else
        echo "FAILED: the websockets server did not start"
        failed=1
    fi
else
    echo "skip: python3-websockets is not installed for /usr/bin/python3"
fi

# The strata tool's echo server: ws, and wss with the module's TLS.
# listen KIND LOG [options]: start it; sets PORT from its -v log.
listen() {
    local kind=$1 log=$2 i
    shift 2
    "$TOOL" listen "$kind://127.0.0.1:0/" --echo -v "$@" 2>"$log" &
    PIDS+=($!)
    for i in $(seq 100); do
        grep -q 'listening on' "$log" && break
        sleep 0.1
    done
    PORT=$(sed -n 's/.* port \([0-9][0-9]*\)$/\1/p' "$log" | head -n 1)
}
if [ -n "$TOOL" ] && [ -x "$TOOL" ]; then
    listen ws "$TMP/ws.log"
    if [ -n "$PORT" ]; then
        run "client vs strata tool (ws)" test_peer.py strata "$PORT" ws asyncio
    else
        echo "FAILED: strata listen ws did not start"; cat "$TMP/ws.log"
        failed=1
    fi
    if [ ${#certs[@]} -gt 0 ]; then
        listen wss "$TMP/wss.log" --cert "${certs[0]}/server.pem" \
            --key "${certs[0]}/server.key"
        if [ -n "$PORT" ]; then
            run "client vs strata tool (wss)" test_peer.py strata "$PORT" wss asyncio "${certs[0]}"
            run "client vs strata tool (wss, blocking)" test_peer.py strata "$PORT" wss blocking "${certs[0]}"
        else
            echo "FAILED: strata listen wss did not start"; cat "$TMP/wss.log"
            failed=1
        fi
    fi
else
    echo "skip: strata tool cases (give its path as the second argument)"
fi

if [ "$failed" != 0 ]; then
    echo "micropython tests: FAILED"
    exit 1
fi
echo "micropython tests: all passed"
