#!/usr/bin/env bash
# HTTP/2 interop of the `strata` tool, used by ctest: strata's h2 echo
# server (`strata listen h2://` and `h2+tls://`) against curl, nghttp and
# h2load, and `strata connect h2+tls://` against nghttpd with TLS.
#
#   run_h2tls.sh CASE STRATA CERTS_DIR
#       curl_tls     curl --http2 --cacert ca.pem --data-binary @F
#                    https://localhost:P/ against h2+tls: the body comes
#                    back whole and curl's http_version is 2
#       curl_prior   curl --http2-prior-knowledge --data-binary @F against
#                    h2:// (cleartext, prior knowledge)
#       nghttp_tls   nghttp -nv (a GET: an empty 200) and nghttp -d F (a
#                    POST: its body comes back) against h2+tls
#       h2load_tls   h2load: 400 POSTs, 4 connections, 25 streams at once
#                    on each, against h2+tls: every answer a 2xx
#       python_connect  Debian's python3-h2 against h2://: a CONNECT
#                    tunnel's bytes (200 KiB) come back after its 200, an
#                    extended CONNECT with an unknown :protocol gets 501,
#                    a GET an empty 200, all on one connection at once
#       client_nghttpd  strata connect h2+tls:// against nghttpd with TLS
#                    (nghttpd -d DIR PORT server.key server.pem): served
#                    files come back whole; the tool POSTs (stdin, here
#                    empty or not), which nghttpd answers with the file
#                    as it does a GET; a missing file is exit 1, 404
#       CERTS_DIR is made by tests/certs/make_certs.sh when missing.
#
# Ports: strata's is read from its -v log; nghttpd's is a free one picked
# just before. Every process runs under `timeout`; the background server
# is killed on exit; a failure prints both sides' logs.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
T_START=15 # seconds for a server to report its port
T_RUN=60   # seconds for one client run

die() {
    echo "FAIL: $*" >&2
    [ -n "${TMP:-}" ] && for f in "$TMP"/*.log "$TMP"/*.err; do
        [ -s "$f" ] && { echo "--- $(basename "$f"):"; tail -n 40 "$f"; }
    done
    exit 1
}

need() {
    command -v "$1" >/dev/null || die "$1 not found (apt-get install $2)"
}

[ $# -eq 3 ] || die "usage: run_h2tls.sh CASE STRATA CERTS_DIR"
CASE=$1 STRATA=$2 CERTS=$3

bash "$HERE/../certs/make_certs.sh" "$CERTS" >/dev/null ||
    die "cannot make the test certificates in $CERTS"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/strata_interop_h2tls.XXXXXX") || die "mktemp"
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

head -c $((1 << 20)) /dev/urandom >"$TMP/body.bin"

# strata_server URI [options]: the echo server in the background; PORT.
strata_server() {
    local uri=$1
    shift
    timeout $((T_RUN * 2)) "$STRATA" listen "$uri" --echo -v "$@" \
        2>"$TMP/strata.log" &
    BG=$!
    # shellcheck disable=SC2016 # wait_for evaluates it
    wait_for 'grep -q "listening on" "$TMP/strata.log"' ||
        die "strata server did not start"
    PORT=$(sed -n 's/.* port \([0-9][0-9]*\)$/\1/p' "$TMP/strata.log")
    echo "strata listen $uri on port $PORT"
}

tls_server() {
    strata_server h2+tls://127.0.0.1:0 --cert "$CERTS/server.pem" \
        --key "$CERTS/server.key"
}

expect_alive() {
    kill -0 "$BG" 2>/dev/null || die "the strata server exited"
}

# check_curl OUT WRITEOUT: the body came back whole over HTTP/2.
check_curl() {
    cmp -s "$TMP/body.bin" "$1" ||
        die "curl's body differs: $(cmp "$TMP/body.bin" "$1" 2>&1)"
    [ "$2" = "2 200" ] || die "curl: http_version and status '$2', want '2 200'"
}

case_curl_tls() {
    local w
    need curl curl
    tls_server
    # localhost is 127.0.0.1, where the server listens (not ::1)
    w=$(timeout "$T_RUN" curl -sS --http2 --cacert "$CERTS/ca.pem" \
        --resolve "localhost:$PORT:127.0.0.1" --data-binary @"$TMP/body.bin" \
        -o "$TMP/out.bin" -w '%{http_version} %{http_code}' \
        "https://localhost:$PORT/echo" 2>"$TMP/curl.err") ||
        die "curl exited $?"
    check_curl "$TMP/out.bin" "$w"
    echo "ok curl --http2 https: 1 MiB back, HTTP/2, 200"
    grep -q 'connection #1: TLS handshake done: .*ALPN h2,' "$TMP/strata.log" ||
        die "strata did not log ALPN h2"
    expect_alive
}

case_curl_prior() {
    local w
    need curl curl
    strata_server h2://127.0.0.1:0
    w=$(timeout "$T_RUN" curl -sS --http2-prior-knowledge \
        --data-binary @"$TMP/body.bin" -o "$TMP/out.bin" \
        -w '%{http_version} %{http_code}' "http://127.0.0.1:$PORT/echo" \
        2>"$TMP/curl.err") || die "curl exited $?"
    check_curl "$TMP/out.bin" "$w"
    echo "ok curl --http2-prior-knowledge: 1 MiB back, HTTP/2, 200"
    expect_alive
}

case_nghttp_tls() {
    need nghttp nghttp2-client
    tls_server
    timeout "$T_RUN" nghttp -nv "https://localhost:$PORT/" \
        >"$TMP/nghttp.log" 2>&1 || die "nghttp -nv exited $?"
    grep -q ':status: 200' "$TMP/nghttp.log" || die "nghttp: no :status 200"
    grep -q 'recv DATA frame .*END_STREAM\|; END_STREAM' "$TMP/nghttp.log" ||
        die "nghttp: the response did not end"
    grep -q 'The negotiated protocol: h2' "$TMP/nghttp.log" ||
        die "nghttp: h2 was not negotiated"
    timeout "$T_RUN" nghttp -d "$TMP/body.bin" "https://localhost:$PORT/up" \
        >"$TMP/out.bin" 2>"$TMP/nghttp.err" || die "nghttp -d exited $?"
    cmp -s "$TMP/body.bin" "$TMP/out.bin" ||
        die "nghttp -d: body differs: $(cmp "$TMP/body.bin" "$TMP/out.bin" 2>&1)"
    echo "ok nghttp -nv (GET: 200) and nghttp -d (POST: 1 MiB back) over TLS"
    expect_alive
}

case_h2load_tls() {
    need h2load nghttp2-client
    head -c 20000 /dev/urandom >"$TMP/small.bin"
    tls_server
    timeout "$T_RUN" h2load -n 400 -c 4 -m 25 -t 1 -d "$TMP/small.bin" \
        "https://localhost:$PORT/" >"$TMP/h2load.log" 2>&1 ||
        die "h2load exited $?"
    grep -q 'requests: 400 total, 400 started, 400 done, 400 succeeded, 0 failed, 0 errored' \
        "$TMP/h2load.log" || die "h2load: not every request succeeded"
    grep -q 'status codes: 400 2xx' "$TMP/h2load.log" ||
        die "h2load: not every status was 2xx"
    grep -q 'Application protocol: h2' "$TMP/h2load.log" ||
        die "h2load: h2 was not negotiated"
    echo "ok h2load: 400 POSTs, 4 connections x 25 streams, all 2xx, ALPN h2"
    expect_alive
}

case_python_connect() {
    /usr/bin/python3 -c 'import h2' 2>/dev/null ||
        die "/usr/bin/python3 cannot import h2 (apt-get install python3-h2)"
    strata_server h2://127.0.0.1:0
    cat >"$TMP/connect.py" <<'PY'
import os, socket, sys
import h2.config, h2.connection, h2.events

port = int(sys.argv[1])
body = os.urandom(200 * 1024)
s = socket.create_connection(("127.0.0.1", port), timeout=30)
# a plain CONNECT has neither :scheme nor :path (RFC 9113 8.5)
c = h2.connection.H2Connection(h2.config.H2Configuration(
    client_side=True, validate_outbound_headers=False))
c.initiate_connection()
tunnel, bogus, get = 1, 3, 5
c.send_headers(tunnel, [(":method", "CONNECT"), (":authority", "x:443")])
c.send_headers(bogus, [(":method", "CONNECT"), (":protocol", "bogus"),
                       (":scheme", "http"), (":path", "/"),
                       (":authority", "x")])
c.send_headers(get, [(":method", "GET"), (":scheme", "http"),
                     (":path", "/"), (":authority", "x")], end_stream=True)
s.sendall(c.data_to_send())
status, got, ended, sent = {}, bytearray(), set(), 0
while len(ended) < 3:
    # the tunnel's bytes go as the windows allow, its end after them
    while sent < len(body):
        room = min(c.local_flow_control_window(tunnel),
                   c.max_outbound_frame_size, len(body) - sent)
        if room <= 0:
            break
        c.send_data(tunnel, body[sent:sent + room])
        sent += room
        if sent == len(body):
            c.end_stream(tunnel)
    s.sendall(c.data_to_send())
    data = s.recv(65536)
    if not data:
        sys.exit("the server closed the connection")
    for e in c.receive_data(data):
        if isinstance(e, h2.events.ResponseReceived):
            status[e.stream_id] = dict(e.headers)[b":status"]
        elif isinstance(e, h2.events.DataReceived):
            if e.stream_id == tunnel:
                got += e.data
            c.acknowledge_received_data(e.flow_controlled_length,
                                        e.stream_id)
        elif isinstance(e, (h2.events.StreamEnded, h2.events.StreamReset)):
            ended.add(e.stream_id)
    s.sendall(c.data_to_send())
c.close_connection()
s.sendall(c.data_to_send())
s.close()
assert status == {tunnel: b"200", bogus: b"501", get: b"200"}, status
assert bytes(got) == body, "the tunnel's bytes differ"
print("tunnel 200 + 200 KiB back, :protocol bogus 501, GET 200")
PY
    timeout "$T_RUN" /usr/bin/python3 "$TMP/connect.py" "$PORT" \
        >"$TMP/python.log" 2>&1 || die "the python h2 client failed"
    echo "ok python h2: $(cat "$TMP/python.log")"
    grep -q 'stream 1: CONNECT x:443' "$TMP/strata.log" ||
        die "strata did not log the tunnel"
    grep -q 'stream 3: refused (:protocol bogus)' "$TMP/strata.log" ||
        die "strata did not log the refusal"
    expect_alive
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

can_connect() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# run_client NAME OUT STDIN PATH: strata connect h2+tls:// to nghttpd.
run_client() {
    timeout "$T_RUN" "$STRATA" connect "h2+tls://localhost:$PORT$4" \
        --ca "$CERTS/ca.pem" -v <"$3" >"$2" 2>"$TMP/$1.err"
}

case_client_nghttpd() {
    local rc
    need nghttpd nghttp2-server
    mkdir -p "$TMP/www"
    head -c 1000 /dev/urandom >"$TMP/www/small.bin"
    head -c $((4 << 20)) /dev/urandom >"$TMP/www/big.bin"
    : >"$TMP/empty"
    for _ in 1 2 3 4 5; do
        PORT=$(free_port) || die "no free port"
        timeout $((T_RUN * 2)) nghttpd -d "$TMP/www" "$PORT" \
            "$CERTS/server.key" "$CERTS/server.pem" >"$TMP/nghttpd.log" 2>&1 &
        BG=$!
        wait_for "can_connect $PORT && sleep 0.1 && kill -0 $BG" && break
        kill "$BG" 2>/dev/null
        wait "$BG" 2>/dev/null
        BG=""
    done
    [ -n "$BG" ] || die "nghttpd did not start: $(cat "$TMP/nghttpd.log")"
    echo "nghttpd (TLS) on port $PORT"
    run_client small "$TMP/small.out" "$TMP/empty" /small.bin ||
        die "strata connect /small.bin exited $?"
    cmp -s "$TMP/www/small.bin" "$TMP/small.out" || die "small.bin differs"
    grep -q 'TLS handshake done: .*ALPN h2, .*peer verified' "$TMP/small.err" ||
        die "strata's log lacks ALPN h2 / peer verified"
    grep -q ':status: 200' "$TMP/small.err" || die "strata's log lacks :status 200"
    echo "ok strata connect h2+tls:// /small.bin (1000 B) from nghttpd"
    run_client big "$TMP/big.out" "$TMP/body.bin" /big.bin ||
        die "strata connect /big.bin exited $?"
    cmp -s "$TMP/www/big.bin" "$TMP/big.out" || die "big.bin differs"
    echo "ok strata connect h2+tls:// /big.bin (4 MiB, a 1 MiB POST body sent)"
    run_client missing "$TMP/missing.out" "$TMP/empty" /missing.bin
    rc=$?
    [ "$rc" -eq 1 ] || die "a missing file: exit $rc, want 1"
    grep -q '^strata: the server answered HTTP status 404$' "$TMP/missing.err" ||
        die "a missing file: no 404 on stderr"
    echo "ok a missing file: exit 1, HTTP status 404"
    kill -0 "$BG" 2>/dev/null || die "nghttpd exited"
}

case $CASE in
curl_tls | curl_prior | nghttp_tls | h2load_tls | python_connect | \
    client_nghttpd)
    "case_$CASE"
    ;;
*) die "unknown case '$CASE'" ;;
esac
echo "passed: $CASE"
