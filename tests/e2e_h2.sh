#!/usr/bin/env bash
# shellcheck disable=SC2016 # the bash -c '...' scripts expand their own $1
# End-to-end tests of HTTP/2 in the `strata` command-line tool: echo
# servers (`strata listen h2://... --echo`, h2+tls with --cert --key, and
# ws+h2, the same server) and clients (`strata connect h2://HOST:PORT/PATH`
# POSTs stdin and prints the response body; ws+h2:// and ws+h2+tls:// are
# WebSocket over an extended CONNECT stream) must give back exactly what
# went in; refusals must say why; a server must serve many clients at once
# and live through bad ones.
#
# Usage: bash e2e_h2.sh /path/to/strata
# Certificates are made by tests/certs/make_certs.sh in a temporary folder.
# Servers listen on port 0 and the port is read from their -v log. Every
# command runs under `timeout`; background servers are killed on exit.
# Each failure is printed; the exit status is 1 if any.
set -u

STRATA=${1:?usage: e2e_h2.sh /path/to/strata}
HERE=$(cd "$(dirname "$0")" && pwd)
T=30         # seconds any one command may take
T_SERVER=110 # a server lives through a group of cases (see e2e_cli.sh)

. "$HERE/lib_e2e.sh"
e2e_init e2e_h2
C=$TMP/certs

if ! "$STRATA" --help | grep -q 'h2://'; then
    echo "skip: this strata has no h2 layer"
    exit 0
fi
HAVE_WS=0
"$STRATA" --help | grep -q 'ws+h2://' && HAVE_WS=1
HAVE_TLS=0
if "$STRATA" --help | grep -q 'h2+tls://'; then
    if ! bash "$HERE/certs/make_certs.sh" "$C" >/dev/null; then
        echo "FAIL: cannot make the test certificates (openssl?)" >&2
        exit 1
    fi
    HAVE_TLS=1
fi
SERVER="--cert $C/server.pem --key $C/server.key"

# ---- inputs ----
head -c 1048576 /dev/urandom >"$TMP/random.bin"
awk 'BEGIN { srand(12); for (i = 0; i < 3000; i++) {
        n = (i % 89 == 0) ? 2000 : int(rand() * 80); s = "";
        for (j = 0; j < n; j++) s = s sprintf("%c", 32 + int(rand() * 95));
        print s } }' >"$TMP/lines.txt"
printf 'one\ntwo\n\nthree\n' >"$TMP/four.txt"
: >"$TMP/empty"

# ---- h2: the request body comes back as the response body ----
roundtrip h2_binary_1MiB 'h2://127.0.0.1:@PORT@/echo' \
    "$TMP/random.bin" "$TMP/random.bin" -v
log_has h2_binary_1MiB "$TMP/h2_binary_1MiB.err" 'request: POST /echo on stream 1'
log_has h2_binary_1MiB "$TMP/h2_binary_1MiB.err" ':status: 200'
log_has h2_binary_1MiB "$TMP/h2_binary_1MiB.err" 'response complete'
log_has h2_binary_1MiB "$TMP/h2_binary_1MiB.server.log" \
    'connection #1: stream 1: POST /echo'
log_has h2_binary_1MiB "$TMP/h2_binary_1MiB.server.log" 'connection #1 closed'
roundtrip h2_empty_body 'h2://127.0.0.1:@PORT@' "$TMP/empty" "$TMP/empty"
roundtrip h2_unix "h2+unix://$TMP/h2.sock" "$TMP/random.bin" "$TMP/random.bin"
roundtrip h2_ipv6 'h2://[::1]:@PORT@/v6' "$TMP/lines.txt" "$TMP/lines.txt"

# ---- ws+h2: lines as text messages over an extended CONNECT stream ----
if [ "$HAVE_WS" -eq 1 ]; then
    roundtrip ws_h2_lines 'ws+h2://127.0.0.1:@PORT@/chat' \
        "$TMP/lines.txt" "$TMP/lines.txt" -v
    log_has ws_h2_lines "$TMP/ws_h2_lines.err" \
        'WebSocket open \(subprotocol none, deflate off\)'
    log_has ws_h2_lines "$TMP/ws_h2_lines.err" 'closed by peer: 1000'
    log_has ws_h2_lines "$TMP/ws_h2_lines.server.log" \
        'stream 1: CONNECT /chat :protocol websocket'
    roundtrip ws_h2_empty_lines 'ws+h2://127.0.0.1:@PORT@/' \
        "$TMP/four.txt" "$TMP/four.txt"
    roundtrip ws_h2_binary_1MiB 'ws+h2://127.0.0.1:@PORT@/bin' \
        "$TMP/random.bin" "$TMP/random.bin" --binary
    LOPTS="--deflate --protocol chat.v2" roundtrip ws_h2_deflate_protocol \
        'ws+h2://127.0.0.1:@PORT@/z' "$TMP/lines.txt" "$TMP/lines.txt" \
        --deflate --protocol chat.v2 -v
    log_has ws_h2_deflate_protocol "$TMP/ws_h2_deflate_protocol.err" \
        'WebSocket open \(subprotocol chat.v2, deflate on\)'
    # An h2:// server serves WebSockets too (without the ws options).
    if start_listener 'h2://127.0.0.1:0' "$TMP/both.log"; then
        if printf 'a\nb\n' | timeout "$T" "$STRATA" connect \
            "ws+h2://127.0.0.1:$PORT/" >"$TMP/both.out" 2>"$TMP/both.err" &&
            [ "$(cat "$TMP/both.out")" = "$(printf 'a\nb')" ]; then
            pass ws_h2_on_h2_server
        else
            fail "ws_h2_on_h2_server: $(cat "$TMP/both.err")"
        fi
        stop_listener
    fi
fi

# ---- over TLS: ALPN h2 offered and required ----
if [ "$HAVE_TLS" -eq 1 ]; then
    LOPTS=$SERVER roundtrip h2_tls_1MiB 'h2+tls://localhost:@PORT@/up' \
        "$TMP/random.bin" "$TMP/random.bin" --ca "$C/ca.pem" -v
    log_has h2_tls_1MiB "$TMP/h2_tls_1MiB.err" \
        'TLS handshake done: TLSv1\.[23], .*ALPN h2, .*peer verified'
    log_has h2_tls_1MiB "$TMP/h2_tls_1MiB.err" 'close_notify sent'
    log_has h2_tls_1MiB "$TMP/h2_tls_1MiB.server.log" \
        'connection #1: TLS handshake done: .*ALPN h2,'
    LOPTS=$SERVER roundtrip h2_tls_by_ip 'h2+tls://127.0.0.1:@PORT@' \
        "$TMP/lines.txt" "$TMP/lines.txt" --ca "$C/ca.pem"
    if [ "$HAVE_WS" -eq 1 ]; then
        LOPTS=$SERVER roundtrip ws_h2_tls_lines \
            'ws+h2+tls://localhost:@PORT@/chat' "$TMP/lines.txt" \
            "$TMP/lines.txt" --ca "$C/ca.pem" -v
        log_has ws_h2_tls_lines "$TMP/ws_h2_tls_lines.err" 'ALPN h2,'
        log_has ws_h2_tls_lines "$TMP/ws_h2_tls_lines.err" \
            'closed by peer: 1000'
        LOPTS=$SERVER roundtrip ws_h2_tls_binary_1MiB \
            'ws+h2+tls://localhost:@PORT@/b' "$TMP/random.bin" \
            "$TMP/random.bin" --ca "$C/ca.pem" --binary
    fi
    # The server accepts only http/1.1: the handshake fails, both say why.
    if LOPTS="$SERVER --alpn http/1.1" \
        start_listener 'h2+tls://localhost:0' "$TMP/alpn.log"; then
        IN=$TMP/four.txt expect_exit alpn_mismatch_refused 1 \
            '^strata: tls: .*no_application_protocol' \
            "$STRATA" connect "h2+tls://localhost:$PORT/" --ca "$C/ca.pem"
        log_has alpn_mismatch_refused "$TMP/alpn.log" \
            'connection #1: tls: .*sent alert no_application_protocol'
        stop_listener
    fi
    # Without ALPN h2 agreed, neither side takes the peer for HTTP/2: a
    # TLS server that does no ALPN, a TLS client that offers none.
    if LOPTS=$SERVER start_listener 'tls://localhost:0' "$TMP/noalpn.log"; then
        IN=$TMP/four.txt expect_exit no_alpn_server_refused 1 \
            '^strata: tls: the server did not agree to HTTP/2 over ALPN \(none\)$' \
            "$STRATA" connect "h2+tls://localhost:$PORT/" --ca "$C/ca.pem"
        stop_listener
    fi
    if LOPTS=$SERVER start_listener 'h2+tls://localhost:0' "$TMP/noalpn2.log"; then
        IN=$TMP/four.txt timeout "$T" "$STRATA" connect \
            "tls://localhost:$PORT" --ca "$C/ca.pem" >/dev/null 2>&1
        sleep 0.2
        log_has no_alpn_client_refused "$TMP/noalpn2.log" \
            'connection #1: tls: the client did not agree to HTTP/2 over ALPN \(none\)'
        kill -0 "$LPID" 2>/dev/null ||
            fail "no_alpn_client_refused: the server exited"
        stop_listener
    fi
    expect_exit h2_tls_server_without_cert 2 \
        'a TLS server needs its certificate and key' \
        "$STRATA" listen h2+tls://127.0.0.1:0 --echo
    [ "$HAVE_WS" -eq 1 ] && expect_exit ws_h2_tls_server_without_cert 2 \
        'a TLS server needs its certificate and key' \
        "$STRATA" listen ws+h2+tls://127.0.0.1:0 --echo
    # A TLS client to an h2 server that speaks no TLS.
    if LOPTS="" start_listener 'h2://127.0.0.1:0' "$TMP/plain.log"; then
        IN=$TMP/four.txt expect_exit h2_tls_to_plain 1 '^strata: tls: ' \
            "$STRATA" connect "h2+tls://127.0.0.1:$PORT/" --ca "$C/ca.pem"
        stop_listener
    fi
fi

# ---- refusals and errors ----
expect_exit lines_on_ws_h2_refused 2 \
    "bad URI 'lines\+ws\+h2://127.0.0.1:1': 'ws' must be the top \(first\) layer or sit under 'tls'" \
    "$STRATA" connect lines+ws+h2://127.0.0.1:1
expect_exit h2_below_lines_refused 2 "'h2' goes right on the transport" \
    "$STRATA" listen h2+lines://127.0.0.1:0 --echo
expect_exit h2_ws_options_need_ws 2 'options of a ws URI' \
    "$STRATA" listen h2://127.0.0.1:0 --echo --deflate
refused_port=
if LOPTS="" start_listener 'h2://127.0.0.1:0' "$TMP/gone.log"; then
    refused_port=$PORT
    stop_listener
    expect_exit h2_connection_refused 1 'cannot connect to .*refused' \
        "$STRATA" connect "h2://127.0.0.1:$refused_port/"
fi
# A peer that is no HTTP/2 server: a tcp echo server sends our own
# preface back, which is no server preface.
if LOPTS="" start_listener 'tcp://127.0.0.1:0' "$TMP/tcp.log" --once; then
    IN=$TMP/four.txt expect_exit h2_to_tcp_echo 1 \
        'HTTP/2 connection error PROTOCOL_ERROR, 0x1' \
        "$STRATA" connect "h2://127.0.0.1:$PORT/"
    wait "$LPID" 2>/dev/null
fi
# A status other than 2xx is exit 1 with the status (nghttpd, if there).
if command -v nghttpd >/dev/null; then
    mkdir -p "$TMP/www"
    printf 'served\n' >"$TMP/www/here.txt"
    nport=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    timeout "$T_SERVER" nghttpd --no-tls -d "$TMP/www" "$nport" \
        >"$TMP/nghttpd.log" 2>&1 &
    PIDS+=($!)
    for i in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$nport") 2>/dev/null && break
        sleep 0.05
    done
    expect_exit h2_status_404 1 '^strata: the server answered HTTP status 404$' \
        "$STRATA" connect "h2://127.0.0.1:$nport/missing"
    if timeout "$T" "$STRATA" connect "h2://127.0.0.1:$nport/here.txt" \
        </dev/null >"$TMP/here.out" 2>"$TMP/here.err" &&
        cmp -s "$TMP/www/here.txt" "$TMP/here.out"; then
        pass h2_status_200_file
    else
        fail "h2_status_200_file: $(cat "$TMP/here.err")"
    fi
else
    echo "skip: h2_status_404 (no nghttpd)"
fi

# ---- one server, many clients at once, and bad clients ----
if LOPTS="" start_listener 'h2://127.0.0.1:0' "$TMP/many.log"; then
    cpids=()
    for i in $(seq 20); do
        if [ "$HAVE_WS" -eq 1 ] && [ $((i % 2)) -eq 0 ]; then
            head -n $((i * 100)) "$TMP/lines.txt" >"$TMP/many.in$i"
            uri="ws+h2://127.0.0.1:$PORT/c$i"
        else
            head -c $((i * 40000)) "$TMP/random.bin" >"$TMP/many.in$i"
            uri="h2://127.0.0.1:$PORT/c$i"
        fi
        timeout "$T" "$STRATA" connect "$uri" <"$TMP/many.in$i" \
            >"$TMP/many.out$i" 2>"$TMP/many.err$i" &
        cpids+=($!)
    done
    ok=1
    for i in $(seq 20); do
        if ! wait "${cpids[$((i - 1))]}" ||
            ! cmp -s "$TMP/many.in$i" "$TMP/many.out$i"; then
            fail "20_clients: client $i: $(cat "$TMP/many.err$i")"
            ok=0
        fi
    done
    [ "$ok" -eq 1 ] && pass 20_clients_at_once
    # Garbage, an HTTP/1.1 request, a client that leaves at once, and a
    # preface with nothing after it: each dropped, logged, the server on.
    timeout "$T" bash -c 'head -c 70000 "$1" >/dev/tcp/127.0.0.1/"$2"' _ \
        "$TMP/random.bin" "$PORT" 2>/dev/null
    timeout "$T" bash -c \
        'printf "GET / HTTP/1.1\r\nHost: x\r\n\r\n" >/dev/tcp/127.0.0.1/"$1"' \
        _ "$PORT" 2>/dev/null
    timeout "$T" bash -c 'exec 3<>/dev/tcp/127.0.0.1/"$1"; exec 3>&-' _ \
        "$PORT" 2>/dev/null
    timeout "$T" bash -c \
        'printf "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" >/dev/tcp/127.0.0.1/"$1"' \
        _ "$PORT" 2>/dev/null
    if timeout "$T" "$STRATA" connect "h2://127.0.0.1:$PORT/after" \
        <"$TMP/lines.txt" >"$TMP/after.out" 2>"$TMP/after.err" &&
        cmp -s "$TMP/lines.txt" "$TMP/after.out"; then
        pass server_survives_bad_clients
    else
        fail "server_survives_bad_clients: $(cat "$TMP/after.err")"
    fi
    if ! kill -0 "$LPID" 2>/dev/null; then
        fail "server_survives_bad_clients: the server exited:" \
            "$(cat "$TMP/many.log")"
    fi
    n=$(grep -c 'connection #[0-9]*: .*(HTTP/2 error PROTOCOL_ERROR' \
        "$TMP/many.log")
    if [ "$n" -lt 2 ]; then
        fail "server_logs_failures: $n HTTP/2 failures logged, expected" \
            ">= 2: $(cat "$TMP/many.log")"
    else
        pass server_logs_failures
    fi
    stop_listener
fi

e2e_finish
