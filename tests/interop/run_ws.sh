#!/usr/bin/env bash
# WebSocket interop driver used by ctest: strata against Python's websockets
# and node's ws, each side as server and as client, deflate on and off.
#
#   run_ws.sh setup-node NODE_ROOT
#       Install node's ws@8 under NODE_ROOT (skipped when it is there, so a
#       machine offline after the first run still passes).
#   run_ws.sh PEER ROLE DEFLATE STRATA WS_CLIENT NODE_ROOT
#       PEER python|node; ROLE: what the peer is, server|client;
#       DEFLATE --deflate|--no-deflate. ROLE server: the peer's echo server
#       against strata's client (WS_CLIENT, tests/interop/ws_client.c).
#       ROLE client: `STRATA listen ws://... --echo` against the peer's
#       client scenario.
#
# Ports are 0 and reported back (port file, -v log): nothing is guessed.
# Every command runs under `timeout`; background processes are killed on
# exit; a failure prints the other side's log.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
PYTHON=/usr/bin/python3 # Debian's websockets is importable only here
T_START=15              # seconds for a server to report its port
T_RUN=240               # seconds for a whole scenario

die() {
    echo "FAIL: $*" >&2
    exit 1
}

setup_node() {
    local root=$1
    if [ -f "$root/node_modules/ws/package.json" ] &&
        grep -q '"version": "8\.' "$root/node_modules/ws/package.json"; then
        echo "node ws@8 already in $root"
        return 0
    fi
    command -v npm >/dev/null || die "npm not found: cannot install node's ws"
    mkdir -p "$root" || die "cannot create $root"
    timeout 180 npm install --prefix "$root" --no-audit --no-fund \
        --loglevel=error ws@8 ||
        die "npm install ws@8 into $root failed (offline?)"
}

if [ "${1:-}" = setup-node ]; then
    setup_node "${2:?usage: run_ws.sh setup-node NODE_ROOT}"
    exit $?
fi

[ $# -eq 6 ] || die "usage: run_ws.sh PEER ROLE DEFLATE STRATA WS_CLIENT NODE_ROOT"
PEER=$1 ROLE=$2 DEFLATE=$3 STRATA=$4 WS_CLIENT=$5 NODE_ROOT=$6

case $DEFLATE in --deflate | --no-deflate) ;; *) die "bad DEFLATE '$DEFLATE'" ;; esac
case $PEER in
python)
    "$PYTHON" -c 'import websockets' 2>/dev/null ||
        die "$PYTHON cannot import websockets (apt-get install python3-websockets)"
    PEER_CMD=("$PYTHON" "$HERE/ws_peer.py")
    ;;
node)
    command -v node >/dev/null || die "node not found"
    [ -f "$NODE_ROOT/node_modules/ws/package.json" ] ||
        die "node's ws is not installed in $NODE_ROOT (run the setup test)"
    export NODE_PATH=$NODE_ROOT/node_modules
    PEER_CMD=(node "$HERE/ws_peer.js")
    ;;
*) die "unknown peer '$PEER' (python or node)" ;;
esac

TMP=$(mktemp -d "${TMPDIR:-/tmp}/strata_interop.XXXXXX") || die "mktemp"
BG=""
cleanup() {
    [ -n "$BG" ] && kill "$BG" 2>/dev/null && wait "$BG" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# wait_for TEST: until TEST succeeds, while the background process lives.
wait_for() {
    local tries=$((T_START * 20))
    while [ "$tries" -gt 0 ]; do
        tries=$((tries - 1))
        eval "$1" && return 0
        kill -0 "$BG" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

peer_is_server() {
    timeout $((T_RUN + 30)) "${PEER_CMD[@]}" server "$TMP/port" "$DEFLATE" \
        >"$TMP/peer.log" 2>&1 &
    BG=$!
    wait_for '[ -s "$TMP/port" ]' ||
        die "$PEER server did not report a port: $(cat "$TMP/peer.log")"
    PORT=$(cat "$TMP/port")
    echo "$PEER echo server on port $PORT; strata client $DEFLATE"
    timeout "$T_RUN" "$WS_CLIENT" "ws://127.0.0.1:$PORT/interop" "$DEFLATE"
    local rc=$?
    if [ "$rc" -ne 0 ]; then
        echo "--- $PEER server log:"
        cat "$TMP/peer.log"
        die "strata client against $PEER server ($DEFLATE) exited $rc"
    fi
}

peer_is_client() {
    local opts=(--echo -v --protocol strata.test) rc
    [ "$DEFLATE" = --deflate ] && opts+=(--deflate)
    timeout $((T_RUN + 30)) "$STRATA" listen ws://127.0.0.1:0 "${opts[@]}" \
        2>"$TMP/strata.log" &
    BG=$!
    wait_for 'grep -q "listening on" "$TMP/strata.log"' ||
        die "strata server did not start: $(cat "$TMP/strata.log")"
    PORT=$(sed -n 's/.* port \([0-9][0-9]*\)$/\1/p' "$TMP/strata.log")
    echo "strata echo server on port $PORT; $PEER client $DEFLATE"
    timeout "$T_RUN" "${PEER_CMD[@]}" client "ws://127.0.0.1:$PORT/interop" \
        "$DEFLATE"
    rc=$?
    if [ "$rc" -ne 0 ]; then
        echo "--- strata server log:"
        cat "$TMP/strata.log"
        die "$PEER client against strata server ($DEFLATE) exited $rc"
    fi
    if ! kill -0 "$BG" 2>/dev/null; then # it must outlive its clients
        cat "$TMP/strata.log"
        die "the strata server exited during the $PEER client's run"
    fi
}

case $ROLE in
server) peer_is_server ;;
client) peer_is_client ;;
*) die "unknown role '$ROLE' (server or client)" ;;
esac
echo "passed: $PEER as $ROLE $DEFLATE"
