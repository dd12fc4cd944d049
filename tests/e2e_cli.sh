#!/usr/bin/env bash
# End-to-end tests of the `strata` command-line tool: an echo server
# (`strata listen URI --echo`) and a client (`strata connect URI`) must give
# back exactly what went in, over TCP and Unix sockets, as bytes, lines and
# length-prefixed messages; errors must give the documented exit codes.
#
# Usage: bash e2e_cli.sh /path/to/strata
# Servers listen on port 0 and the port is read from their -v log, so no
# port is guessed. Every command runs under `timeout`; background servers
# are killed on exit. Each failure is printed; the exit status is 1 if any.
set -u

STRATA=${1:?usage: e2e_cli.sh /path/to/strata}
T=30 # seconds any one command may take
TMP=$(mktemp -d "${TMPDIR:-/tmp}/strata_e2e.XXXXXX")
PIDS=()
FAILED=0

cleanup() {
    local p
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null
    done
    wait 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

fail() {
    echo "FAIL: $*" >&2
    FAILED=$((FAILED + 1))
}

pass() {
    echo "ok: $*"
}

# start_listener URI LOG [options]: a background echo server; sets LPID and
# PORT (empty for a Unix socket) once its log says it listens.
start_listener() {
    local uri=$1 log=$2 i
    shift 2
    : >"$log" # exists before the server opens it: grep below may be first
    timeout "$T" "$STRATA" listen "$uri" --echo -v "$@" 2>"$log" &
    LPID=$!
    PIDS+=("$LPID")
    for i in $(seq 200); do
        grep -q 'listening on' "$log" && break
        kill -0 "$LPID" 2>/dev/null || break
        sleep 0.05
    done
    if ! grep -q 'listening on' "$log"; then
        fail "server for $uri did not start: $(cat "$log")"
        return 1
    fi
    PORT=$(sed -n 's/.* port \([0-9][0-9]*\)$/\1/p' "$log")
}

# roundtrip NAME TEMPLATE INPUT EXPECTED [connect options]: one --once
# server, one client fed INPUT from a file; the client's output must equal
# EXPECTED byte for byte. TEMPLATE holds @PORT@ where the port goes.
roundtrip() {
    local name=$1 tmpl=$2 in=$3 want=$4 rc lrc
    shift 4
    local log=$TMP/$name.server.log out=$TMP/$name.out err=$TMP/$name.err
    start_listener "${tmpl/@PORT@/0}" "$log" --once || return
    timeout "$T" "$STRATA" connect "${tmpl/@PORT@/$PORT}" "$@" \
        <"$in" >"$out" 2>"$err"
    rc=$?
    wait "$LPID"
    lrc=$?
    if [ "$rc" -ne 0 ]; then
        fail "$name: connect exited $rc: $(cat "$err")"
    elif [ "$lrc" -ne 0 ]; then
        fail "$name: server exited $lrc: $(cat "$log")"
    elif ! cmp -s "$want" "$out"; then
        fail "$name: output differs: $(cmp "$want" "$out" 2>&1)"
    else
        pass "$name"
    fi
}

# expect_exit NAME CODE PATTERN command...: the command must exit CODE and
# its stderr must match PATTERN (grep -E). Its stdin is $IN (/dev/null).
expect_exit() {
    local name=$1 code=$2 pattern=$3 rc
    shift 3
    timeout "$T" "$@" <"${IN:-/dev/null}" >"$TMP/x.out" 2>"$TMP/x.err"
    rc=$?
    if [ "$rc" -ne "$code" ]; then
        fail "$name: exit $rc, expected $code (stderr: $(cat "$TMP/x.err"))"
    elif ! grep -Eq -- "$pattern" "$TMP/x.err"; then
        fail "$name: stderr '$(cat "$TMP/x.err")' lacks /$pattern/"
    else
        pass "$name"
    fi
}

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
name=many_clients
if start_listener 'len://127.0.0.1:0' "$TMP/$name.log"; then
    cpids=()
    for i in 1 2 3 4; do
        head -c $((i * 100000)) "$TMP/random.bin" >"$TMP/$name.in$i"
        timeout "$T" "$STRATA" connect "len://127.0.0.1:$PORT" --binary \
            <"$TMP/$name.in$i" >"$TMP/$name.out$i" 2>"$TMP/$name.err$i" &
        cpids+=($!)
    done
    ok=1
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
fi

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

expect_exit bad_uri_unknown_layer 2 "unknown layer 'foo' \(known: tcp, lines, len\)" \
    "$STRATA" connect foo://127.0.0.1:1
expect_exit bad_uri_reserved_layer 2 "layer 'ws' is not built in this version" \
    "$STRATA" connect ws://127.0.0.1:1
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
expect_exit extra_argument 2 "unexpected argument 'x'" \
    "$STRATA" connect tcp://127.0.0.1:1 x
expect_exit listen_without_echo 2 'listen needs --echo' \
    "$STRATA" listen tcp://127.0.0.1:0
expect_exit echo_on_connect 2 "options of 'listen'" \
    "$STRATA" connect tcp://127.0.0.1:1 --echo

# ---- help ----
for opt in --help -h; do
    if timeout "$T" "$STRATA" "$opt" >"$TMP/help.out" 2>&1 &&
        grep -q 'strata connect URI' "$TMP/help.out" &&
        grep -q 'strata listen URI --echo' "$TMP/help.out" &&
        grep -q -- '--binary' "$TMP/help.out" &&
        grep -q -- '--once' "$TMP/help.out"; then
        pass "help $opt"
    else
        fail "help $opt: $(cat "$TMP/help.out")"
    fi
done

if [ "$FAILED" -ne 0 ]; then
    echo "$FAILED check(s) failed" >&2
    exit 1
fi
echo "all checks passed"
