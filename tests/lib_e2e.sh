# Shared by the tests/e2e_*.sh scripts (sourced, not run): a temporary
# folder and background servers cleaned up on exit, pass/fail counting,
# an echo server on port 0 whose port is read from its -v log, a
# client/server round trip compared byte for byte, an expected exit code
# with an expected message. The sourcing script sets STRATA, T (seconds
# any one command may take) and T_SERVER (a server lives through a group
# of cases, which on a loaded machine can outlast one command's T), then
# calls e2e_init NAME and ends with e2e_finish.
# shellcheck shell=bash

e2e_init() {
    TMP=$(mktemp -d "${TMPDIR:-/tmp}/strata_$1.XXXXXX")
    PIDS=()
    FAILED=0
    trap e2e_cleanup EXIT
    trap 'exit 1' INT TERM HUP
}

e2e_cleanup() {
    local p
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null
    done
    wait 2>/dev/null
    rm -rf "$TMP"
}

fail() {
    echo "FAIL: $*" >&2
    FAILED=$((FAILED + 1))
}

pass() {
    echo "ok: $*"
}

# start_listener URI LOG [options]: a background echo server; sets LPID and
# PORT (empty for a Unix socket) once its log says it listens. $LOPTS adds
# options before the given ones (word-split on purpose).
start_listener() {
    local uri=$1 log=$2
    shift 2
    start_server "$uri" "$log" --echo "$@"
}

# start_server URI LOG [options]: the same for any `strata listen` (a
# --forward bridge: the options say what it does).
start_server() {
    local uri=$1 log=$2
    shift 2
    : >"$log" # exists before the server opens it: grep below may be first
    # shellcheck disable=SC2086
    timeout "$T_SERVER" "$STRATA" listen "$uri" -v ${LOPTS:-} "$@" \
        2>"$log" &
    LPID=$!
    PIDS+=("$LPID")
    for _ in $(seq 200); do
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

stop_listener() {
    kill "$LPID" 2>/dev/null
    wait "$LPID" 2>/dev/null
}

# roundtrip NAME TEMPLATE INPUT EXPECTED [connect options]: one --once
# server, one client fed INPUT; the client's output must equal EXPECTED
# byte for byte and both must exit 0. TEMPLATE holds @PORT@ for the port.
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

# log_has NAME FILE PATTERN: a -v log must say PATTERN (grep -E).
log_has() {
    if ! grep -Eq -- "$3" "$2"; then
        fail "$1: log lacks /$3/: $(cat "$2")"
    fi
}

e2e_finish() {
    if [ "$FAILED" -ne 0 ]; then
        echo "$FAILED check(s) failed" >&2
        exit 1
    fi
    echo "all checks passed"
}
