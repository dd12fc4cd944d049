#!/usr/bin/env bash
# shellcheck disable=SC2016,SC2154 # bash -c scripts expand their own $1; serve sets P_NAME and PID_NAME
# End-to-end tests of the `strata` tool putting stacks together: `strata
# listen URI --forward URI2` bridges (a WebSocket over HTTP/2 over TLS in
# front of a plain TCP echo server, wss in front of ws, a chain of two
# bridges, bytes into lines, lines into len, HTTP/2 both sides), gRPC
# calls and CONNECT tunnels (`connect` and `listen --echo`), -v naming
# each layer, options after the URI, and the exit codes. Each case checks
# the bytes (a 1 MiB random payload compared byte for byte) or the
# messages (text lines, in order). The plain layer combinations (tcp, tls,
# ws, wss, h2, ws+h2, ws+h2+tls, tls+ws) are in e2e_cli.sh, e2e_tls.sh and
# e2e_h2.sh.
#
# Usage: bash e2e_compose.sh /path/to/strata
# Certificates are made by tests/certs/make_certs.sh in a temporary folder.
# Servers listen on port 0 and the port is read from their -v log. Every
# command runs under `timeout`; background servers are killed on exit.
# Each failure is printed; the exit status is 1 if any.
set -u

STRATA=${1:?usage: e2e_compose.sh /path/to/strata}
HERE=$(cd "$(dirname "$0")" && pwd)
T=30         # seconds any one command may take
T_SERVER=200 # servers live through the whole script (see e2e_cli.sh)

. "$HERE/lib_e2e.sh"
e2e_init e2e_compose
C=$TMP/certs

help=$("$STRATA" --help)
have() { grep -q -- "$1" <<<"$help"; }
if ! have 'ws+h2+tls://' || ! have '--forward'; then
    echo "skip: this strata has no ws, tls or h2 layer"
    exit 0
fi
if ! bash "$HERE/certs/make_certs.sh" "$C" >/dev/null; then
    echo "FAIL: cannot make the test certificates (openssl?)" >&2
    exit 1
fi
SERVER="--cert $C/server.pem --key $C/server.key"
CA=(--ca "$C/ca.pem")

# ---- inputs ----
head -c 1048576 /dev/urandom >"$TMP/random.bin"
head -c 8388608 /dev/urandom >"$TMP/big.bin"
awk 'BEGIN { srand(13); for (i = 0; i < 2000; i++) {
        n = (i % 97 == 0) ? 3000 : int(rand() * 80); s = "";
        for (j = 0; j < n; j++) s = s sprintf("%c", 32 + int(rand() * 95));
        print s } }' >"$TMP/lines.txt"
printf 'one\n\ntwo\nthree\n' >"$TMP/four.txt"

# serve NAME URI [options]: a background `strata listen` (LOPTS adds
# options), its port in P_NAME, its log $TMP/NAME.log.
serve() {
    local name=$1 uri=$2
    shift 2
    start_server "$uri" "$TMP/$name.log" "$@" || return 1
    printf -v "P_$name" '%s' "$PORT"
    eval "PID_$name=\$LPID"
}

# through NAME URI IN WANT [connect options]: a client through running
# servers; exit 0 and its output equal to WANT byte for byte.
through() {
    local name=$1 uri=$2 in=$3 want=$4 rc
    shift 4
    timeout "$T" "$STRATA" connect "$uri" "$@" <"$in" >"$TMP/$name.out" \
        2>"$TMP/$name.err"
    rc=$?
    if [ "$rc" -ne 0 ]; then
        fail "$name: connect exited $rc: $(cat "$TMP/$name.err")"
    elif ! cmp -s "$want" "$TMP/$name.out"; then
        fail "$name: output differs: $(cmp "$want" "$TMP/$name.out" 2>&1)"
    else
        pass "$name"
    fi
}

# ---- the echo servers the bridges forward to ----
LOPTS="" serve tcp_echo 'tcp://127.0.0.1:0' --echo || exit 1
LOPTS="" serve lines_echo 'lines://127.0.0.1:0' --echo || exit 1
LOPTS="" serve len_echo 'len://127.0.0.1:0' --echo || exit 1
LOPTS="" serve ws_echo 'ws://127.0.0.1:0' --echo || exit 1
LOPTS="" serve h2_echo 'h2://127.0.0.1:0' --echo || exit 1

# ---- --forward: a protocol translator in front of a plain echo ----
# WebSocket over HTTP/2 over TLS in front of TCP: the bytes both ways.
LOPTS=$SERVER serve wsh2 'ws+h2+tls://localhost:0' \
    --forward "tcp://127.0.0.1:$P_tcp_echo" || exit 1
through fwd_ws_h2_tls_to_tcp_1MiB "ws+h2+tls://localhost:$P_wsh2/up" \
    "$TMP/random.bin" "$TMP/random.bin" --binary "${CA[@]}"
# 8 MiB: most of the echo comes after our stdin ended; all must arrive
# and the exit must be 0 (clean close after the last message).
through fwd_ws_h2_tls_to_tcp_8MiB "ws+h2+tls://localhost:$P_wsh2/big" \
    "$TMP/big.bin" "$TMP/big.bin" --binary "${CA[@]}"
log_has fwd_ws_h2_tls_to_tcp "$TMP/wsh2.log" \
    "connection #1 stream 1: forwarding to tcp://127.0.0.1:$P_tcp_echo"
log_has fwd_ws_h2_tls_to_tcp "$TMP/wsh2.log" 'connection #1 stream 1 closed'
# the same server answers a plain HTTP/2 request by the same bridge
through fwd_h2_tls_post_to_tcp "h2+tls://localhost:$P_wsh2/post" \
    "$TMP/random.bin" "$TMP/random.bin" "${CA[@]}"

# WebSocket messages kept as lines messages, in order, and back.
LOPTS=$SERVER serve wsh2_lines 'ws+h2+tls://localhost:0' \
    --forward "lines://127.0.0.1:$P_lines_echo" || exit 1
through fwd_ws_h2_tls_to_lines "ws+h2+tls://localhost:$P_wsh2_lines/" \
    "$TMP/lines.txt" "$TMP/lines.txt" "${CA[@]}"

# wss in front of ws: text lines stay text messages, binary binary.
LOPTS=$SERVER serve wss_ws 'wss://localhost:0' \
    --forward "ws://127.0.0.1:$P_ws_echo/inner" || exit 1
through fwd_wss_to_ws_lines "wss://localhost:$P_wss_ws/" \
    "$TMP/lines.txt" "$TMP/lines.txt" "${CA[@]}"
through fwd_wss_to_ws_1MiB "wss://localhost:$P_wss_ws/" \
    "$TMP/random.bin" "$TMP/random.bin" --binary "${CA[@]}"

# A chain of two bridges: wss -> ws+h2+tls -> tcp; TLS toward the second
# bridge is checked against --forward-ca.
LOPTS=$SERVER serve chain 'wss://localhost:0' \
    --forward "ws+h2+tls://localhost:$P_wsh2/chain" \
    --forward-ca "$C/ca.pem" || exit 1
through fwd_chain_1MiB "wss://localhost:$P_chain/" \
    "$TMP/random.bin" "$TMP/random.bin" --binary "${CA[@]}"
log_has fwd_chain "$TMP/chain.log" \
    'connection #1 upstream: TLS handshake done: .*ALPN h2, .*peer verified'
log_has fwd_chain "$TMP/chain.log" 'connection #1 upstream: stream 1 open'

# Bytes into lines are cut at each LF; lines into len stay messages.
LOPTS="" serve tcp_lines 'tcp://127.0.0.1:0' \
    --forward "lines://127.0.0.1:$P_lines_echo" || exit 1
through fwd_tcp_to_lines "tcp://127.0.0.1:$P_tcp_lines" \
    "$TMP/lines.txt" "$TMP/lines.txt"
LOPTS="" serve lines_len 'lines://127.0.0.1:0' \
    --forward "len://127.0.0.1:$P_len_echo" || exit 1
through fwd_lines_to_len "lines://127.0.0.1:$P_lines_len" \
    "$TMP/lines.txt" "$TMP/lines.txt"
# An HTTP/2 upstream: the bytes ride one POST's bodies.
LOPTS="" serve tcp_h2 'tcp://127.0.0.1:0' \
    --forward "h2://127.0.0.1:$P_h2_echo/via" || exit 1
through fwd_tcp_to_h2_1MiB "tcp://127.0.0.1:$P_tcp_h2" \
    "$TMP/random.bin" "$TMP/random.bin"
log_has fwd_tcp_to_h2 "$TMP/h2_echo.log" 'stream 1: POST /via'

# Several clients at once through one bridge server.
cpids=()
for i in 1 2 3 4; do
    head -c $((i * 150000)) "$TMP/random.bin" >"$TMP/many.in$i"
    timeout "$T" "$STRATA" connect "ws+h2+tls://localhost:$P_wsh2/c$i" \
        --binary "${CA[@]}" <"$TMP/many.in$i" >"$TMP/many.out$i" \
        2>"$TMP/many.err$i" &
    cpids+=($!)
done
ok=1
for i in 1 2 3 4; do
    if ! wait "${cpids[$((i - 1))]}" ||
        ! cmp -s "$TMP/many.in$i" "$TMP/many.out$i"; then
        fail "fwd_many_clients: client $i: $(cat "$TMP/many.err$i")"
        ok=0
    fi
done
[ "$ok" -eq 1 ] && pass fwd_many_clients

# ---- --forward failures: the protocol's own error ----
LOPTS="" serve gone 'tcp://127.0.0.1:0' --echo || exit 1
kill "$PID_gone"
wait "$PID_gone" 2>/dev/null
LOPTS="" serve h2_to_gone 'h2://127.0.0.1:0' \
    --forward "tcp://127.0.0.1:$P_gone" || exit 1
IN=$TMP/four.txt expect_exit fwd_refused_h2_502 1 \
    '^strata: the server answered HTTP status 502$' \
    "$STRATA" connect "h2://127.0.0.1:$P_h2_to_gone/"
IN=$TMP/four.txt expect_exit fwd_refused_ws_h2_502 1 \
    'refused the WebSocket over HTTP/2: HTTP status 502' \
    "$STRATA" connect "ws+h2://127.0.0.1:$P_h2_to_gone/"
log_has fwd_refused "$TMP/h2_to_gone.log" \
    'stream 1 upstream: .*Connection refused'
log_has fwd_refused "$TMP/h2_to_gone.log" 'stream 1: answered 502'
# The upstream WebSocket closes with 1008: the client gets that close.
timeout "$T" python3 "$(dirname "$0")/raw_ws_server.py" close1008 \
    "$TMP/close1008.port" \
    2>"$TMP/close1008.err" &
rpid=$!
PIDS+=("$rpid")
for _ in $(seq 200); do
    [ -s "$TMP/close1008.port" ] && break
    sleep 0.05
done
if LOPTS="" serve ws_to_1008 'ws://127.0.0.1:0' --once \
    --forward "ws://127.0.0.1:$(cat "$TMP/close1008.port")/"; then
    mkfifo "$TMP/hold.fifo"
    exec 7<>"$TMP/hold.fifo" # stdin stays open: only the close ends it
    IN=/dev/fd/7 expect_exit fwd_ws_close_code_passes 1 \
        '^strata: closed by peer: 1008 policy says no$' \
        "$STRATA" connect "ws://127.0.0.1:$P_ws_to_1008/"
    exec 7>&-
    wait "$rpid" || fail "fwd_ws_close_code_passes: the python server failed"
fi

# ---- gRPC calls and CONNECT tunnels (connect and listen --echo) ----
if have 'grpc+h2'; then
    LOPTS="" serve grpc 'grpc+h2://127.0.0.1:0/echo.Echo/Say' --echo ||
        exit 1
    through grpc_lines "grpc+h2://127.0.0.1:$P_grpc/echo.Echo/Say" \
        "$TMP/lines.txt" "$TMP/lines.txt"
    through grpc_binary_1MiB "grpc+h2://127.0.0.1:$P_grpc/echo.Echo/Say" \
        "$TMP/random.bin" "$TMP/random.bin" --binary
    IN=$TMP/four.txt expect_exit grpc_unimplemented 1 \
        '^strata: gRPC status UNIMPLEMENTED \(12\)' \
        "$STRATA" connect "grpc+h2://127.0.0.1:$P_grpc/echo.Echo/Other"
    LOPTS=$SERVER serve grpc_tls 'grpc+h2+tls://localhost:0/echo.Echo/Say' \
        --echo || exit 1
    through grpc_tls_lines \
        "grpc+h2+tls://localhost:$P_grpc_tls/echo.Echo/Say" \
        "$TMP/lines.txt" "$TMP/lines.txt" "${CA[@]}"
    # a gRPC front for a lines service, and its messages
    LOPTS="" serve grpc_fwd 'grpc+h2://127.0.0.1:0/echo.Echo/Say' \
        --forward "lines://127.0.0.1:$P_lines_echo" || exit 1
    through fwd_grpc_to_lines "grpc+h2://127.0.0.1:$P_grpc_fwd/echo.Echo/Say" \
        "$TMP/lines.txt" "$TMP/lines.txt"
else
    echo "skip: grpc (not in this strata)"
fi
LOPTS="" serve tunnel 'lines+h2://127.0.0.1:0' --echo || exit 1
through tunnel_lines "lines+h2://127.0.0.1:$P_tunnel" \
    "$TMP/lines.txt" "$TMP/lines.txt"
log_has tunnel_lines "$TMP/tunnel.log" "stream 1: CONNECT 127.0.0.1:$P_tunnel"
LOPTS=$SERVER serve tunnel_tls 'lines+tls+h2+tls://localhost:0' --echo ||
    exit 1
through tunnel_tls_in_tls "lines+tls+h2+tls://localhost:$P_tunnel_tls" \
    "$TMP/lines.txt" "$TMP/lines.txt" "${CA[@]}"
log_has tunnel_tls_in_tls "$TMP/tunnel_tls.log" \
    'connection #1 stream 1: TLS handshake done'
# TCP in front of a TLS-in-HTTP/2 tunnel: the bytes.
LOPTS=$SERVER serve tls_tunnel 'tls+h2+tls://localhost:0' --echo || exit 1
LOPTS="" serve tcp_tunnel2 'tcp://127.0.0.1:0' \
    --forward "tls+h2+tls://localhost:$P_tls_tunnel" \
    --forward-ca "$C/ca.pem" || exit 1
through fwd_tcp_to_tls_tunnel_1MiB "tcp://127.0.0.1:$P_tcp_tunnel2" \
    "$TMP/random.bin" "$TMP/random.bin"

# ---- -v names each layer; -vv each call ----
LOPTS=$SERVER serve vtls 'lines+tls://localhost:0' --echo --once || exit 1
through verbose_layers "lines+tls://localhost:$P_vtls" "$TMP/four.txt" \
    "$TMP/four.txt" "${CA[@]}" -vv
# four.txt: 4 lines of 11 bytes in all, 15 with their LFs
for pat in '^strata: lines: received 11 B in 4 messages$' \
    '^strata: lines: sent 11 B in 4 messages$' \
    '^strata: tls: received 15 B in ' '^strata: tls: sent 15 B in ' \
    '^strata: tcp: received [0-9]+ B in ' '^strata: tls: recv [0-9]+ B$' \
    '^strata: lines: send 3 B \(end\)$' '^strata: lines: recv 5 B \(end\)$'; do
    log_has verbose_layers "$TMP/verbose_layers.err" "$pat"
done
wait "$PID_vtls" # --once: it exits by itself, 0 after a clean close
rc=$?
[ "$rc" -eq 0 ] || fail "verbose_layers: the --once server exited $rc"
log_has verbose_layers "$TMP/vtls.log" \
    '^strata: connection #1: lines: received 11 B in 4 messages$'
log_has verbose_layers "$TMP/vtls.log" '^strata: connection #1: tls: sent 15 B'
log_has verbose_layers "$TMP/wsh2.log" \
    '^strata: connection #1 stream 1: ws: received 1048576 B in [0-9]+ messages$'
log_has verbose_layers "$TMP/wsh2.log" '^strata: connection #1: tls: received'
log_has verbose_layers "$TMP/wsh2.log" \
    '^strata: connection #1 stream 1 upstream: tcp: sent 1048576 B'

# ---- options anywhere, usage errors (exit 2) ----
LOPTS="" start_server 'tls://localhost:0' "$TMP/anywhere.log" --once \
    --cert "$C/server.pem" --echo --key "$C/server.key" &&
    through options_after_uri "tls://localhost:$PORT" "$TMP/random.bin" \
        "$TMP/random.bin" --binary --ca "$C/ca.pem" -v
expect_exit two_uris 2 "one URI only: 'tcp://127.0.0.1:2' after" \
    "$STRATA" connect tcp://127.0.0.1:1 tcp://127.0.0.1:2
expect_exit forward_needs_uri 2 '--forward needs a URI' \
    "$STRATA" listen tcp://127.0.0.1:0 --forward
expect_exit forward_bad_uri 2 "bad --forward URI 'nope://x:1': unknown layer" \
    "$STRATA" listen tcp://127.0.0.1:0 --forward nope://x:1
expect_exit forward_on_connect 2 "options of 'listen'" \
    "$STRATA" connect tcp://127.0.0.1:1 --forward tcp://127.0.0.1:2
expect_exit echo_and_forward 2 'either --echo or --forward' \
    "$STRATA" listen tcp://127.0.0.1:0 --echo --forward tcp://127.0.0.1:2
expect_exit listen_without_mode 2 'listen needs --echo or --forward' \
    "$STRATA" listen tcp://127.0.0.1:0
expect_exit forward_ca_without_tls 2 'options of a --forward URI with a tls' \
    "$STRATA" listen tcp://127.0.0.1:0 --forward tcp://127.0.0.1:2 \
    --forward-ca "$C/ca.pem"
expect_exit forward_options_alone 2 'go with --forward URI2' \
    "$STRATA" listen tcp://127.0.0.1:0 --echo --forward-insecure
expect_exit unknown_option_after_uri 2 "unknown option '--bogus'" \
    "$STRATA" listen tcp://127.0.0.1:0 --echo --bogus
expect_exit forward_missing_ca_file 1 "cannot read CA file" \
    "$STRATA" listen tcp://127.0.0.1:0 --forward tls://127.0.0.1:2 \
    --forward-ca "$C/nope.pem"
if grep -q 'Exit status: 0 .*1 .*2 usage' <<<"$(tr '\n' ' ' <<<"$help")" &&
    have 'strata listen URI --forward URI2' && have '--forward-ca FILE' &&
    have '-vv'; then
    pass help_documents_forward
else
    fail "help_documents_forward: $help"
fi

e2e_finish
