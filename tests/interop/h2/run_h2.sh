#!/usr/bin/env bash
# HTTP/2 and WebSocket-over-HTTP/2 interop driver used by ctest.
#
#   run_h2.sh CASE H2_ECHO_SERVER WS_H2_SERVER WS_H2_CLIENT H2_CLIENT WS_H2_CHECK
#
# The programs: examples/h2_echo_server, examples/ws_h2_server,
# examples/ws_h2_client, and the test clients h2_client.c and
# ws_h2_client.c of this folder (WS_H2_CHECK). CASE:
#   nghttp          nghttp -nv / -d against h2_echo_server (1 MiB identity)
#   curl            curl --http2-prior-knowledge --data-binary against it
#   h2load_get      h2load -n 5000 -c 4 -m 10 -t 1 against it
#   h2load_post     the same with -d FILE
#   client_nghttpd  strata's h2_client against nghttpd --no-tls -d DIR
#   ws_h2_python_server / ws_h2_node_server
#                   the peer's echo server against strata's clients
#   ws_h2_python_client / ws_h2_node_client
#                   the peer's client scenario against ws_h2_server
#
# Each case is independent: its own temporary folder and free ports; every
# command runs under `timeout`; background processes are killed on exit;
# a failure prints the other side's log.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
PYTHON=/usr/bin/python3 # Debian's h2 and wsproto are importable only here
T_START=10              # seconds for a server to come up
T_RUN=60                # seconds for one command

die() {
    echo "FAIL: $*" >&2
    exit 1
}

[ $# -eq 6 ] || die "usage: run_h2.sh CASE H2_ECHO_SERVER WS_H2_SERVER WS_H2_CLIENT H2_CLIENT WS_H2_CHECK"
CASE=$1 H2_ECHO=$2 WS_H2_SERVER=$3 WS_H2_CLIENT=$4 H2_CLIENT=$5 WS_H2_CHECK=$6

TMP=$(mktemp -d "${TMPDIR:-/tmp}/strata_h2.XXXXXX") || die "mktemp"
BG=""
cleanup() {
    [ -n "$BG" ] && kill "$BG" 2>/dev/null && wait "$BG" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

need() {
    command -v "$1" >/dev/null || die "$1 not found (apt-get install $2)"
}

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

free_port() {
    "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

can_connect() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# start NAME CMD...: run a server on a free port (an argument "PORT" of
# CMD is replaced by it) until it accepts connections; a few ports are
# tried in case another process took the one picked. Sets PORT and BG.
start() {
    local name=$1 arg args
    shift
    for _ in 1 2 3 4 5; do
        PORT=$(free_port) || die "no free port"
        args=()
        for arg in "$@"; do
            [ "$arg" = PORT ] && arg=$PORT
            args+=("$arg")
        done
        timeout $((T_RUN * 2)) "${args[@]}" >"$TMP/$name.log" 2>&1 &
        BG=$!
        # ours, not a process that took the port first: a server that
        # could not listen has exited by the time the check is made
        wait_for "can_connect $PORT && sleep 0.1 && kill -0 $BG" && return 0
        kill "$BG" 2>/dev/null
        wait "$BG" 2>/dev/null
        BG=""
    done
    die "$name did not start: $(cat "$TMP/$name.log")"
}

# start_reporting NAME PATTERN CMD...: a server that picks its own port
# and reports it (a file, or a line of its output matching PATTERN, whose
# last number is the port). Sets PORT and BG.
start_reporting() {
    local name=$1 pattern=$2
    shift 2
    timeout $((T_RUN * 2)) "$@" >"$TMP/$name.log" 2>&1 &
    BG=$!
    if [ "$pattern" = portfile ]; then
        # shellcheck disable=SC2016 # wait_for evaluates it
        wait_for '[ -s "$TMP/port" ]' ||
            die "$name did not report a port: $(cat "$TMP/$name.log")"
        PORT=$(cat "$TMP/port")
    else
        # shellcheck disable=SC2016 # wait_for evaluates it
        wait_for 'grep -q "$pattern" "$TMP/$name.log"' ||
            die "$name did not start: $(cat "$TMP/$name.log")"
        PORT=$(grep "$pattern" "$TMP/$name.log" | grep -o '[0-9][0-9]*' | tail -1)
    fi
    echo "$name on port $PORT"
}

# expect_alive NAME: the server must outlive its clients.
expect_alive() {
    kill -0 "$BG" 2>/dev/null || {
        cat "$TMP/$1.log"
        die "$1 exited during the run"
    }
}

# run WHAT CMD...: a client command under timeout; on failure, the logs.
run() {
    local what=$1 rc
    shift
    timeout "$T_RUN" "$@"
    rc=$?
    if [ "$rc" -ne 0 ]; then
        echo "--- server log:"
        cat "$TMP"/*.log 2>/dev/null
        die "$what exited $rc"
    fi
}

# ---- HTTP/2 tools against examples/h2_echo_server ----

echo_server() {
    start h2_echo_server "$H2_ECHO" PORT
    URL=http://127.0.0.1:$PORT/echo
    echo "h2_echo_server on port $PORT"
}

case_nghttp() {
    need nghttp nghttp2-client
    head -c $((1 << 20)) /dev/urandom >"$TMP/body"
    echo_server
    run "nghttp -d" nghttp -d "$TMP/body" "$URL" >"$TMP/out"
    cmp "$TMP/body" "$TMP/out" || die "nghttp: the 1 MiB echo differs"
    echo "ok nghttp POST 1 MiB echoed identically"
    run "nghttp -nv" nghttp -nv -d "$TMP/body" "$URL" >"$TMP/v"
    grep -q ':status: 200' "$TMP/v" || die "nghttp -nv: no :status 200: $(cat "$TMP/v")"
    grep -q 'recv DATA frame .*flags=0x01' "$TMP/v" ||
        die "nghttp -nv: no END_STREAM on DATA: $(cat "$TMP/v")"
    ! grep -q 'RST_STREAM' "$TMP/v" || die "nghttp -nv: a reset: $(cat "$TMP/v")"
    echo "ok nghttp -nv: :status 200, END_STREAM, no reset"
    # 20 at once on one connection (-m repeats the request)
    run "nghttp -m 20" nghttp -nv -m 20 -d "$TMP/body" "$URL" >"$TMP/v"
    [ "$(grep -c ':status: 200' "$TMP/v")" -eq 20 ] ||
        die "nghttp -m 20: $(grep -c ':status: 200' "$TMP/v") of 20 answered 200"
    echo "ok nghttp -m 20: 20 concurrent 1 MiB echoes answered 200"
    expect_alive h2_echo_server
}

case_curl() {
    need curl curl
    curl -V | grep -q HTTP2 || die "this curl has no HTTP/2"
    head -c $((1 << 20)) /dev/urandom >"$TMP/body"
    echo_server
    local got
    got=$(timeout "$T_RUN" curl -sS --http2-prior-knowledge --data-binary @"$TMP/body" \
        -o "$TMP/out" -w '%{http_version} %{http_code}' "$URL") ||
        die "curl failed: $(cat "$TMP/h2_echo_server.log")"
    [ "$got" = "2 200" ] || die "curl: http_version and status '$got', wanted '2 200'"
    cmp "$TMP/body" "$TMP/out" || die "curl: the 1 MiB echo differs"
    echo "ok curl --http2-prior-knowledge: HTTP/2, 200, 1 MiB echoed identically"
    got=$(timeout "$T_RUN" curl -sS --http2-prior-knowledge -o /dev/null \
        -w '%{http_version} %{http_code}' "$URL") || die "curl GET failed"
    [ "$got" = "2 200" ] || die "curl GET: '$got', wanted '2 200'"
    echo "ok curl GET: HTTP/2, 200"
    expect_alive h2_echo_server
}

# h2load ARGS...: 5000 requests, all must succeed with 2xx.
h2load_check() {
    need h2load nghttp2-client
    echo_server
    run h2load h2load -n 5000 -c 4 -m 10 -t 1 "$@" "$URL" >"$TMP/h2load.out"
    cat "$TMP/h2load.out"
    grep -q '^requests: 5000 total, 5000 started, 5000 done, 5000 succeeded, 0 failed, 0 errored, 0 timeout' \
        "$TMP/h2load.out" || die "h2load: not every request succeeded"
    grep -q '^status codes: 5000 2xx, 0 3xx, 0 4xx, 0 5xx' "$TMP/h2load.out" ||
        die "h2load: not every status was 2xx"
    echo "ok h2load $*: 5000 requests, 0 failed, 0 errored, all 2xx"
    expect_alive h2_echo_server
}

# ---- strata's HTTP/2 client against nghttpd ----

case_client_nghttpd() {
    need nghttpd nghttp2-server
    mkdir -p "$TMP/www"
    head -c 1000 /dev/urandom >"$TMP/www/small.bin"
    head -c $((8 << 20)) /dev/urandom >"$TMP/www/big.bin"
    head -c $((1 << 20)) /dev/urandom >"$TMP/post"
    start nghttpd nghttpd --no-tls -d "$TMP/www" PORT
    echo "nghttpd on port $PORT"
    run "h2_client GET small" "$H2_CLIENT" 127.0.0.1 "$PORT" /small.bin "$TMP/www/small.bin"
    # past nghttpd's 100 concurrent streams: the rest wait for a free one
    run "h2_client GET small x150" "$H2_CLIENT" 127.0.0.1 "$PORT" /small.bin "$TMP/www/small.bin" -n 150
    run "h2_client GET 8 MiB x4" "$H2_CLIENT" 127.0.0.1 "$PORT" /big.bin "$TMP/www/big.bin" -n 4
    run "h2_client POST 1 MiB x3" "$H2_CLIENT" 127.0.0.1 "$PORT" /big.bin "$TMP/www/big.bin" \
        -n 3 --post "$TMP/post"
    expect_alive nghttpd
}

# ---- WebSocket over HTTP/2 ----

peer_cmd() {
    case $1 in
    python)
        "$PYTHON" -c 'import h2, wsproto' 2>/dev/null ||
            die "$PYTHON cannot import h2 and wsproto (apt-get install python3-h2 python3-wsproto)"
        PEER=("$PYTHON" "$HERE/ws_h2_peer.py")
        ;;
    node)
        need node nodejs
        PEER=(node "$HERE/ws_h2_peer.js")
        ;;
    esac
}

# The peer's echo server against strata's test client (several sockets,
# 0 B .. 1 MiB) and against examples/ws_h2_client fed lines on stdin.
peer_is_server() {
    peer_cmd "$1"
    start_reporting "$1" portfile "${PEER[@]}" server "$TMP/port"
    run "ws_h2_client test (3 sockets)" "$WS_H2_CHECK" 127.0.0.1 "$PORT" /interop --sockets 3
    if [ "$1" = python ]; then # wsproto has permessage-deflate; our node peer has not
        run "ws_h2_client test --deflate" "$WS_H2_CHECK" 127.0.0.1 "$PORT" /interop --deflate --sockets 2
    fi
    {
        printf 'hello\n\nh\303\251llo \342\234\223\n'
        head -c 20000 /dev/zero | tr '\0' 'z'
        printf '\nlast line without a newline'
    } >"$TMP/lines"
    { cat "$TMP/lines"; printf '\nclosed by server: 1000 \n'; } >"$TMP/want"
    run "examples/ws_h2_client" "$WS_H2_CLIENT" 127.0.0.1 "$PORT" /chat <"$TMP/lines" >"$TMP/got"
    cmp "$TMP/want" "$TMP/got" || die "examples/ws_h2_client: output differs from its input"
    echo "ok examples/ws_h2_client: 5 lines echoed, closed 1000"
    expect_alive "$1"
}

# The peer's client scenario against examples/ws_h2_server.
peer_is_client() {
    peer_cmd "$1"
    start_reporting ws_h2_server "listening on port" "$WS_H2_SERVER" 0
    run "$1 client" "${PEER[@]}" client 127.0.0.1 "$PORT" /interop
    expect_alive ws_h2_server
    ! grep -v 'listening on port' "$TMP/ws_h2_server.log" ||
        die "ws_h2_server complained (above)"
}

case $CASE in
nghttp) case_nghttp ;;
curl) case_curl ;;
h2load_get) h2load_check ;;
h2load_post)
    head -c 4096 /dev/urandom >"$TMP/post"
    h2load_check -d "$TMP/post"
    ;;
client_nghttpd) case_client_nghttpd ;;
ws_h2_python_server) peer_is_server python ;;
ws_h2_node_server) peer_is_server node ;;
ws_h2_python_client) peer_is_client python ;;
ws_h2_node_client) peer_is_client node ;;
*) die "unknown case '$CASE'" ;;
esac
echo "passed: $CASE"
