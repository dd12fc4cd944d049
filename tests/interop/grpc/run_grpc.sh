#!/usr/bin/env bash
# gRPC interop driver used by ctest: strata's interop programs against
# Debian's grpcio (python3-grpcio in /usr/bin/python3), running every case
# of gRPC's interop test descriptions that this folder implements.
#
#   run_grpc.sh DIRECTION MODE INTEROP_SERVER INTEROP_CLIENT CERTS_DIR
#
# DIRECTION: strata_client  strata's interop_client against the Python server
#            strata_server  the Python client against strata's interop_server
#            python         Python against Python (checks the peers themselves)
#            strata         strata against strata
# MODE: plain (cleartext HTTP/2, prior knowledge) or tls (ALPN h2, the
# test CA of tests/certs/make_certs.sh, made in CERTS_DIR when missing; the
# client connects to 127.0.0.1 and verifies the name "localhost").
#
# The server picks its own port (--port=0) and prints it; each case runs in
# its own client process under `timeout`; the server is killed on exit and
# must have outlived every case. Prints one line per case and a summary;
# exits non-zero if any case failed.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
PYTHON=/usr/bin/python3 # Debian's grpc and protobuf are importable only here
T_START=20              # seconds for a server to report its port
T_CASE=30               # seconds for one case

CASES="empty_unary large_unary client_streaming server_streaming ping_pong
empty_stream custom_metadata status_code_and_message special_status_message
unimplemented_method unimplemented_service cancel_after_begin
cancel_after_first_response timeout_on_sleeping_server"

die() {
    echo "FAIL: $*" >&2
    exit 1
}

[ $# -eq 5 ] || die "usage: run_grpc.sh DIRECTION MODE INTEROP_SERVER INTEROP_CLIENT CERTS_DIR"
DIRECTION=$1 MODE=$2 STRATA_SERVER=$3 STRATA_CLIENT=$4 CERTS=$5

TMP=$(mktemp -d "${TMPDIR:-/tmp}/strata_grpc.XXXXXX") || die "mktemp"
BG=""
cleanup() {
    [ -n "$BG" ] && kill "$BG" 2>/dev/null && wait "$BG" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

"$PYTHON" -c 'import grpc, google.protobuf' 2>/dev/null ||
    die "$PYTHON cannot import grpc (apt-get install python3-grpcio python3-protobuf)"
command -v protoc >/dev/null || die "protoc not found (apt-get install protobuf-compiler)"
# The Python message classes, made for this run only.
mkdir "$TMP/pb" || die "mkdir"
if ! (cd "$HERE/proto" &&
    protoc --python_out="$TMP/pb" -I . empty.proto messages.proto test.proto); then
    die "protoc --python_out failed"
fi
export PYTHONPATH="$TMP/pb" PYTHONDONTWRITEBYTECODE=1

case $DIRECTION in
strata_client) SERVER=("$PYTHON" "$HERE/grpc_interop_server.py") CLIENT=("$STRATA_CLIENT") ;;
strata_server) SERVER=("$STRATA_SERVER") CLIENT=("$PYTHON" "$HERE/grpc_interop_client.py") ;;
python) SERVER=("$PYTHON" "$HERE/grpc_interop_server.py") CLIENT=("$PYTHON" "$HERE/grpc_interop_client.py") ;;
strata) SERVER=("$STRATA_SERVER") CLIENT=("$STRATA_CLIENT") ;;
*) die "unknown direction '$DIRECTION'" ;;
esac
SERVER+=(--port=0)
CLIENT+=(--server_host=127.0.0.1)
case $MODE in
plain) ;;
tls)
    bash "$HERE/../../certs/make_certs.sh" "$CERTS" >/dev/null ||
        die "cannot make the test certificates in $CERTS"
    SERVER+=(--use_tls=true "--tls_cert_file=$CERTS/server.pem" "--tls_key_file=$CERTS/server.key")
    CLIENT+=(--use_tls=true "--ca_file=$CERTS/ca.pem" --server_host_override=localhost)
    ;;
*) die "unknown mode '$MODE' (plain or tls)" ;;
esac

# The server, on the port it picked. --foreground: the SIGCONT that
# timeout otherwise sends after forwarding SIGTERM can cancel the SIGSTOP
# of LeakSanitizer's exit-time thread suspension and hang a sanitizer
# build's exit.
: >"$TMP/server.log"
timeout --foreground $((T_CASE * 30)) "${SERVER[@]}" >"$TMP/server.out" 2>"$TMP/server.log" &
BG=$!
for _ in $(seq $((T_START * 20))); do
    grep -q 'listening on port' "$TMP/server.out" && break
    kill -0 "$BG" 2>/dev/null || break
    sleep 0.05
done
PORT=$(sed -n 's/.*listening on port \([0-9][0-9]*\).*/\1/p' "$TMP/server.out")
[ -n "$PORT" ] || die "the server did not start: $(cat "$TMP/server.out" "$TMP/server.log")"
echo "$DIRECTION $MODE: ${SERVER[0]##*/} on port $PORT, client ${CLIENT[0]##*/}"

PASSED=0 FAILED=0 FAILED_CASES=""
for c in $CASES; do
    timeout "$T_CASE" "${CLIENT[@]}" "--server_port=$PORT" "--test_case=$c" \
        >"$TMP/case.out" 2>&1
    rc=$?
    if [ "$rc" -eq 0 ]; then
        PASSED=$((PASSED + 1))
        echo "ok $c"
    else
        FAILED=$((FAILED + 1))
        FAILED_CASES="$FAILED_CASES $c"
        [ "$rc" -eq 124 ] && echo "timed out after ${T_CASE}s" >>"$TMP/case.out"
        echo "FAIL $c (exit $rc):"
        sed 's/^/    /' "$TMP/case.out"
    fi
done

# The server must have outlived every case and must end cleanly on
# SIGTERM (status 0: a sanitizer build reports leaks or errors otherwise).
if ! kill -0 "$BG" 2>/dev/null; then
    FAILED=$((FAILED + 1))
    FAILED_CASES="$FAILED_CASES server-exited"
    echo "FAIL the server exited during the run"
else
    kill "$BG"
    wait "$BG"
    rc=$?
    BG=""
    if [ "$rc" -ne 0 ]; then
        FAILED=$((FAILED + 1))
        FAILED_CASES="$FAILED_CASES server-exit"
        echo "FAIL the server exited $rc on SIGTERM"
    fi
fi
if [ "$FAILED" -ne 0 ] && [ -s "$TMP/server.log" ]; then
    echo "--- server log:"
    cat "$TMP/server.log"
fi
echo "$DIRECTION $MODE: $PASSED passed, $FAILED failed${FAILED_CASES:+ ($FAILED_CASES )}"
[ "$FAILED" -eq 0 ]
