#!/usr/bin/env bash
# End-to-end tests of the `strata` command-line tool: an echo server
# (`strata listen URI --echo`) and a client (`strata connect URI`) must give
# back exactly what went in, over TCP and Unix sockets, as bytes, lines,
# length-prefixed and (when built in) WebSocket messages; errors must give
# the documented exit codes.
#
# Usage: bash e2e_cli.sh /path/to/strata
# Servers listen on port 0 and the port is read from their -v log, so no
# port is guessed. Every command runs under `timeout`; background servers
# are killed on exit. Each failure is printed; the exit status is 1 if any.
set -u

STRATA=${1:?usage: e2e_cli.sh /path/to/strata}
T=30 # seconds any one command may take
# A server lives through a whole group of cases, which on a loaded machine
# (ctest -j2 beside the interop tests, a sanitizer build) can outlast one
# command's T; the trap kills it at the end anyway.
T_SERVER=110

. "$(dirname "$0")/lib_e2e.sh"
e2e_init e2e

# ---- inputs ----
head -c 1048576 /dev/urandom >"$TMP/random.bin"
# A few thousand lines of printable text, some empty, some long.
awk 'BEGIN { srand(7); for (i = 0; i < 4000; i++) {
        n = (i % 97 == 0) ? 3000 : int(rand() * 80); s = "";
        for (j = 0; j < n; j++) s = s sprintf("%c", 32 + int(rand() * 95));
        print s } }' >"$TMP/lines.txt"
printf 'first\n\nlast line without newline' >"$TMP/partial.txt"
printf 'first\n\nlast line without newline\n' >"$TMP/partial.want"
: >"$TMP/empty"

# ---- echo round trips ----
roundtrip tcp_binary_1MiB 'tcp://127.0.0.1:@PORT@' \
    "$TMP/random.bin" "$TMP/random.bin"
roundtrip lines_tcp 'lines+tcp://127.0.0.1:@PORT@' \
    "$TMP/lines.txt" "$TMP/lines.txt"
roundtrip lines_implied_tcp_partial_last_line 'lines://127.0.0.1:@PORT@' \
    "$TMP/partial.txt" "$TMP/partial.want"
roundtrip len_tcp_binary_1MiB 'len+tcp://127.0.0.1:@PORT@' \
    "$TMP/random.bin" "$TMP/random.bin" --binary
roundtrip len_lines_as_messages 'len://127.0.0.1:@PORT@' \
    "$TMP/lines.txt" "$TMP/lines.txt"
roundtrip empty_input 'lines://127.0.0.1:@PORT@' "$TMP/empty" "$TMP/empty"
roundtrip unix_binary_1MiB "unix://$TMP/bytes.sock" \
    "$TMP/random.bin" "$TMP/random.bin"
roundtrip unix_lines "lines+unix://$TMP/lines.sock" \
    "$TMP/lines.txt" "$TMP/lines.txt"
roundtrip unix_len_binary "len+unix://$TMP/len.sock" \
    "$TMP/random.bin" "$TMP/random.bin" --binary
if [ -e "$TMP/bytes.sock" ]; then
    fail "unix server left its socket file behind"
fi

# IPv6 loopback, when this machine has it.
timeout 5 "$STRATA" listen 'tcp://[::1]:0' --echo -v 2>"$TMP/v6probe.log" &
probe=$!
sleep 0.3
kill "$probe" 2>/dev/null
wait "$probe" 2>/dev/null
if grep -q listening "$TMP/v6probe.log"; then
    roundtrip ipv6_lines 'lines+tcp://[::1]:@PORT@' \
        "$TMP/lines.txt" "$TMP/lines.txt"
else
    echo "skip: ipv6 (no ::1 here)"
fi

# stdin as a pipe that pauses: the client must wait for input, not spin or
# stop early, and options may come before the command.
name=pipe_stdin_options_first
if start_listener 'lines://127.0.0.1:0' "$TMP/$name.log" --once; then
    { head -n 100 "$TMP/lines.txt"; sleep 0.5; tail -n +101 "$TMP/lines.txt"; } |
        timeout "$T" "$STRATA" -v connect "lines://127.0.0.1:$PORT" \
            >"$TMP/$name.out" 2>"$TMP/$name.err"
    rc=$?
    wait "$LPID"
    if [ "$rc" -ne 0 ] || ! cmp -s "$TMP/lines.txt" "$TMP/$name.out"; then
        fail "$name: exit $rc, $(cmp "$TMP/lines.txt" "$TMP/$name.out" 2>&1)"
    elif ! grep -q 'connected' "$TMP/$name.err" ||
        ! grep -q 'peer closed' "$TMP/$name.err"; then
        fail "$name: -v log lacks events: $(cat "$TMP/$name.err")"
    else
        pass "$name"
    fi
fi

# One server, several clients at once; it runs on until killed.
# many_clients NAME URI-WITHOUT-PORT-SUFFIX: URI ends in ':' + port.
many_clients() {
    local name=$1 base=$2 cpids=() ok=1 i n
    start_listener "${base}0" "$TMP/$name.log" || return
    for i in 1 2 3 4; do
        head -c $((i * 100000)) "$TMP/random.bin" >"$TMP/$name.in$i"
        timeout "$T" "$STRATA" connect "${base}$PORT" --binary \
            <"$TMP/$name.in$i" >"$TMP/$name.out$i" 2>"$TMP/$name.err$i" &
        cpids+=($!)
    done
    for i in 1 2 3 4; do
        if ! wait "${cpids[$((i - 1))]}"; then
            fail "$name: client $i failed: $(cat "$TMP/$name.err$i")"
            ok=0
        elif ! cmp -s "$TMP/$name.in$i" "$TMP/$name.out$i"; then
            fail "$name: client $i output differs"
            ok=0
        fi
    done
    if ! kill -0 "$LPID" 2>/dev/null; then
        fail "$name: server without --once exited: $(cat "$TMP/$name.log")"
        ok=0
    fi
    kill "$LPID" 2>/dev/null
    wait "$LPID" 2>/dev/null
    n=$(grep -c 'accepted' "$TMP/$name.log")
    if [ "$n" -ne 4 ]; then
        fail "$name: server logged $n accepts, expected 4"
        ok=0
    fi
    [ "$ok" -eq 1 ] && pass "$name"
}
many_clients many_clients 'len://127.0.0.1:'

# ---- errors ----
# A port nobody listens on: take one from a server, then stop it.
if start_listener 'tcp://127.0.0.1:0' "$TMP/refused.log" --once; then
    kill "$LPID"
    wait "$LPID" 2>/dev/null
    expect_exit refused_tcp 1 'cannot connect to .*refused' \
        "$STRATA" connect "lines://127.0.0.1:$PORT"
fi
expect_exit refused_unix 1 'cannot connect to unix socket' \
    "$STRATA" connect "unix://$TMP/nobody.sock"
if start_listener 'tcp://127.0.0.1:0' "$TMP/taken.log"; then
    expect_exit listen_port_taken 1 "cannot listen on 127.0.0.1:$PORT: " \
        "$STRATA" listen "tcp://127.0.0.1:$PORT" --echo
    kill "$LPID"
    wait "$LPID" 2>/dev/null
fi
# --binary sends raw chunks: over lines a chunk with a newline is refused.
if start_listener 'lines://127.0.0.1:0' "$TMP/newline.log" --once; then
    printf 'a\nb\n' >"$TMP/newline.in"
    IN=$TMP/newline.in expect_exit lines_binary_newline 1 \
        'cannot hold a newline' \
        "$STRATA" connect "lines://127.0.0.1:$PORT" --binary
    wait "$LPID"
fi

expect_exit bad_uri_unknown_layer 2 "unknown layer 'foo' \(known: tcp, lines, len" \
    "$STRATA" connect foo://127.0.0.1:1
expect_exit bad_uri_grpc_on_tcp 2 \
    "'grpc' goes right on 'h2'|layer 'grpc' is not built in this version" \
    "$STRATA" connect grpc://127.0.0.1:1
expect_exit bad_uri_missing_port 2 'missing port' \
    "$STRATA" connect lines://127.0.0.1
expect_exit bad_uri_tcp_not_bottom 2 "'tcp' must be the bottom" \
    "$STRATA" listen tcp+lines://127.0.0.1:1 --echo
expect_exit no_arguments 2 'missing command' "$STRATA"
expect_exit unknown_command 2 "unknown command 'send'" \
    "$STRATA" send tcp://127.0.0.1:1
expect_exit missing_uri 2 'missing URI' "$STRATA" connect
expect_exit unknown_option 2 "unknown option '--bogus'" \
    "$STRATA" connect tcp://127.0.0.1:1 --bogus
expect_exit extra_argument 2 "one URI only: 'x' after 'tcp://127.0.0.1:1'" \
    "$STRATA" connect tcp://127.0.0.1:1 x
expect_exit listen_without_echo 2 'listen needs --echo' \
    "$STRATA" listen tcp://127.0.0.1:0
expect_exit echo_on_connect 2 "options of 'listen'" \
    "$STRATA" connect tcp://127.0.0.1:1 --echo

# ---- WebSocket (when this build has the ws layer) ----
if "$STRATA" --help | grep -q 'ws://'; then
    HAVE_WS=1
else
    HAVE_WS=0
fi

# tests/raw_ws_server.py: a hand-written WebSocket server for what an echo
# server never does (refuse the handshake, close with 1008).

# raw_ws_case NAME MODE PATTERN: the client must exit 1 saying PATTERN.
raw_ws_case() {
    local name=$1 mode=$2 pattern=$3 rpid i
    rm -f "$TMP/raw.port"
    timeout "$T" python3 "$(dirname "$0")/raw_ws_server.py" "$mode" \
        "$TMP/raw.port" \
        2>"$TMP/$name.raw.err" &
    rpid=$!
    PIDS+=("$rpid")
    for i in $(seq 200); do
        [ -s "$TMP/raw.port" ] && break
        sleep 0.05
    done
    if [ ! -s "$TMP/raw.port" ]; then
        fail "$name: raw server did not start: $(cat "$TMP/$name.raw.err")"
        return
    fi
    expect_exit "$name" 1 "$pattern" \
        "$STRATA" connect "ws://127.0.0.1:$(cat "$TMP/raw.port")/"
    if ! wait "$rpid"; then
        fail "$name: raw server failed: $(cat "$TMP/$name.raw.err")"
    fi
}

if [ "$HAVE_WS" -eq 1 ]; then
    printf 'h\xc3\xa9llo w\xc3\xb6rld\n\xe2\x9c\x93 \xf0\x9f\x8e\x89\n\n\xe6\x97\xa5\xe6\x9c\xac\n' \
        >"$TMP/utf8.txt"
    printf 'good line\nbad \xff byte\n' >"$TMP/bad_utf8.txt"
    head -c 200000 /dev/urandom >"$TMP/small.bin"

    roundtrip ws_text_lines 'ws://127.0.0.1:@PORT@/echo' \
        "$TMP/lines.txt" "$TMP/lines.txt"
    roundtrip ws_text_utf8 'ws://127.0.0.1:@PORT@/' \
        "$TMP/utf8.txt" "$TMP/utf8.txt"
    roundtrip ws_text_partial_last_line 'ws+tcp://127.0.0.1:@PORT@' \
        "$TMP/partial.txt" "$TMP/partial.want"
    roundtrip ws_empty_input 'ws://127.0.0.1:@PORT@' "$TMP/empty" "$TMP/empty"
    roundtrip ws_binary_1MiB 'ws://127.0.0.1:@PORT@/bin' \
        "$TMP/random.bin" "$TMP/random.bin" --binary
    roundtrip ws_unix_lines "ws+unix://$TMP/ws.sock" \
        "$TMP/lines.txt" "$TMP/lines.txt"
    # Deflate on both sides: the client's -v log says it is in force.
    LOPTS=--deflate roundtrip ws_deflate_lines 'ws://127.0.0.1:@PORT@/z' \
        "$TMP/lines.txt" "$TMP/lines.txt" --deflate -v
    if ! grep -q 'deflate on' "$TMP/ws_deflate_lines.err"; then
        fail "ws_deflate_lines: deflate not in force: $(cat "$TMP/ws_deflate_lines.err")"
    fi
    LOPTS=--deflate roundtrip ws_deflate_binary_1MiB 'ws://127.0.0.1:@PORT@' \
        "$TMP/random.bin" "$TMP/random.bin" --binary --deflate -v
    if ! grep -q 'deflate on' "$TMP/ws_deflate_binary_1MiB.err"; then
        fail "ws_deflate_binary_1MiB: deflate not in force"
    fi
    # Only one side asks for deflate: it is off, and all still works.
    roundtrip ws_deflate_client_only 'ws://127.0.0.1:@PORT@' \
        "$TMP/utf8.txt" "$TMP/utf8.txt" --deflate -v
    if ! grep -q 'deflate off' "$TMP/ws_deflate_client_only.err"; then
        fail "ws_deflate_client_only: deflate should be off"
    fi
    LOPTS='--protocol chat.v1' roundtrip ws_protocol 'ws://127.0.0.1:@PORT@' \
        "$TMP/utf8.txt" "$TMP/utf8.txt" --protocol chat.v1 -v
    if ! grep -q 'subprotocol chat.v1' "$TMP/ws_protocol.err"; then
        fail "ws_protocol: not negotiated: $(cat "$TMP/ws_protocol.err")"
    fi
    many_clients ws_many_clients 'ws://127.0.0.1:'

    raw_ws_case ws_closed_by_peer close1008 '^strata: closed by peer: 1008 policy says no$'
    raw_ws_case ws_handshake_refused refuse 'HTTP 404'

    # A line that is not UTF-8 cannot be a text message.
    if start_listener 'ws://127.0.0.1:0' "$TMP/ws_bad_utf8.log" --once; then
        IN=$TMP/bad_utf8.txt expect_exit ws_invalid_utf8 1 'valid UTF-8' \
            "$STRATA" connect "ws://127.0.0.1:$PORT"
        wait "$LPID"
    fi
    # ws spoken to a plain TCP echo server: the handshake fails.
    if start_listener 'tcp://127.0.0.1:0' "$TMP/ws_to_tcp.log" --once; then
        expect_exit ws_to_plain_tcp 1 'protocol error' \
            "$STRATA" connect "ws://127.0.0.1:$PORT"
        wait "$LPID"
    fi

    expect_exit ws_layer_above 2 "'ws' must be the top \(first\) layer" \
        "$STRATA" connect lines+ws://127.0.0.1:1
    expect_exit ws_layer_below 2 "'ws' goes right on the transport" \
        "$STRATA" listen ws+len://127.0.0.1:1 --echo
    expect_exit ws_option_without_ws 2 \
        'deflate and --protocol are options of a ws URI' \
        "$STRATA" connect lines://127.0.0.1:1 --deflate
    expect_exit ws_protocol_without_name 2 '--protocol needs a NAME' \
        "$STRATA" connect ws://127.0.0.1:1 --protocol
else
    expect_exit ws_not_built 2 "layer 'ws' is not built in this version" \
        "$STRATA" connect ws://127.0.0.1:1
fi

# ---- out of descriptors: accepting pauses instead of spinning ----
# With 12 descriptors the server runs out after a few connections and the
# rest wait in the listen backlog. A failed accept leaves the listening
# socket readable: the server must pause (a few log lines a second), not
# spin on it (it logged half a million lines in 2 s before), and serve
# again once the clients left.
emfile_log=$TMP/emfile.log
: >"$emfile_log"
(ulimit -n 12 && exec timeout "$T_SERVER" "$STRATA" listen \
    tcp://127.0.0.1:0 --echo -v) 2>"$emfile_log" &
emfile_pid=$!
PIDS+=("$emfile_pid")
for _ in $(seq 200); do
    grep -q 'listening on' "$emfile_log" && break
    sleep 0.05
done
PORT=$(sed -n 's/.* port \([0-9][0-9]*\)$/\1/p' "$emfile_log")
held=()
for _ in $(seq 20); do
    exec {fd}<>"/dev/tcp/127.0.0.1/$PORT" && held+=("$fd")
done
sleep 1
paused=$(grep -c 'accept: .*pausing' "$emfile_log")
accepts=$(grep -c '^accept:\|accept: ' "$emfile_log")
for fd in "${held[@]}"; do
    exec {fd}>&-
done
if [ "$paused" -lt 1 ]; then
    fail "emfile: no pause logged: $(tail -n 5 "$emfile_log")"
elif [ "$accepts" -gt 100 ]; then
    fail "emfile: $accepts accept failures logged in a second: spinning"
else
    out=$(printf 'still here\n' | timeout "$T" "$STRATA" connect \
          "lines://127.0.0.1:$PORT" 2>&1)
    if [ "$out" = "still here" ]; then
        pass "emfile: accepting paused ($accepts failures in 1 s) and resumed"
    else
        fail "emfile: no echo after the clients left: $out"
    fi
fi
kill "$emfile_pid" 2>/dev/null

# ---- help ----
for opt in --help -h; do
    if timeout "$T" "$STRATA" "$opt" >"$TMP/help.out" 2>&1 &&
        grep -q 'strata connect URI' "$TMP/help.out" &&
        grep -q 'strata listen URI --echo' "$TMP/help.out" &&
        grep -q -- '--binary' "$TMP/help.out" &&
        grep -q -- '--once' "$TMP/help.out" &&
        { [ "$HAVE_WS" -eq 0 ] || grep -q -- '--deflate' "$TMP/help.out"; }; then
        pass "help $opt"
    else
        fail "help $opt: $(cat "$TMP/help.out")"
    fi
done

e2e_finish
