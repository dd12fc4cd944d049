#!/usr/bin/env bash
# TLS interop driver used by ctest: strata against Debian's openssl CLI,
# each as client and as server.
#
#   run_tls.sh CASE STRATA CERTS_DIR
#       CASE is PEER_VARIANT; PEER is what openssl plays:
#       s_server (`openssl s_server -rev`, which answers each line
#       reversed) against `STRATA connect tls://...`, or s_client
#       (`openssl s_client -verify_return_error -verify_hostname localhost`)
#       against `STRATA listen tls://... --echo`. VARIANT: tls12, tls13
#       (the version forced on openssl's side, checked in strata's -v log),
#       alpn (both sides say h2; strata must log "ALPN h2"), mtls
#       (s_client only: strata asks a client certificate with --ca).
#       CERTS_DIR is made by tests/certs/make_certs.sh when missing.
#
# Ports: openssl s_server takes port 0 and prints "ACCEPT host:port";
# strata's is read from its -v log. Nothing is guessed. Every process runs
# under `timeout`; the background server is killed on exit; a failure
# prints both sides' logs.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
T_START=15 # seconds for a server to report its port
T_RUN=60   # seconds for one client run

die() {
    echo "FAIL: $*" >&2
    [ -n "${TMP:-}" ] && for f in "$TMP"/*.log "$TMP"/*.err; do
        [ -s "$f" ] && { echo "--- $(basename "$f"):"; cat "$f"; }
    done
    exit 1
}

[ $# -eq 3 ] || die "usage: run_tls.sh CASE STRATA CERTS_DIR"
CASE=$1 STRATA=$2 CERTS=$3
PEER=${CASE%_*} VARIANT=${CASE##*_}

command -v openssl >/dev/null || die "openssl not found (scripts/deps.sh)"
bash "$HERE/../certs/make_certs.sh" "$CERTS" >/dev/null ||
    die "cannot make the test certificates in $CERTS"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/strata_interop_tls.XXXXXX") || die "mktemp"
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

# Lines with spaces, punctuation, an empty line, a long one.
{
    printf 'hello world\n\nstrata over openssl: 1, 2, 3!\n'
    head -c 3000 /dev/zero | tr '\0' 'x'
    printf 'y\nlast\n'
} >"$TMP/in.txt"

# openssl s_server -rev against strata's client.
strata_client() {
    local oopts=() sopts=(--ca "$CERTS/ca.pem" -v) want_log
    case $VARIANT in
    tls12) oopts=(-tls1_2) want_log='TLS handshake done: TLSv1\.2,' ;;
    tls13) oopts=(-tls1_3) want_log='TLS handshake done: TLSv1\.3,' ;;
    alpn)
        oopts=(-alpn h2)
        sopts+=(--alpn h2)
        want_log='TLS handshake done: .*, ALPN h2,'
        ;;
    *) die "unknown variant '$VARIANT' for s_server" ;;
    esac
    timeout $((T_RUN + 30)) openssl s_server -accept 127.0.0.1:0 \
        -cert "$CERTS/server.pem" -key "$CERTS/server.key" -rev -naccept 1 \
        "${oopts[@]}" >"$TMP/s_server.log" 2>&1 &
    BG=$!
    wait_for 'grep -q "^ACCEPT" "$TMP/s_server.log"' ||
        die "openssl s_server did not start"
    PORT=$(sed -n 's/^ACCEPT .*:\([0-9][0-9]*\)$/\1/p' "$TMP/s_server.log")
    echo "openssl s_server -rev ${oopts[*]} on port $PORT; strata client"
    # each line comes back reversed
    awk '{ s = ""; for (i = length($0); i > 0; i--) s = s substr($0, i, 1)
           print s }' "$TMP/in.txt" >"$TMP/want.txt"
    timeout "$T_RUN" "$STRATA" connect "tls://127.0.0.1:$PORT" \
        "${sopts[@]}" <"$TMP/in.txt" >"$TMP/out.txt" 2>"$TMP/strata.err" ||
        die "strata client exited $?"
    cmp -s "$TMP/want.txt" "$TMP/out.txt" ||
        die "reversed lines differ: $(cmp "$TMP/want.txt" "$TMP/out.txt" 2>&1)"
    grep -Eq "$want_log" "$TMP/strata.err" ||
        die "strata's log lacks /$want_log/"
    grep -q "peer's close_notify received" "$TMP/strata.err" ||
        die "no close_notify from s_server"
}

# openssl s_client against `strata listen --echo`.
strata_server() {
    local oopts=() sopts=(--cert "$CERTS/server.pem" --key "$CERTS/server.key")
    local want_log
    case $VARIANT in
    tls12) oopts=(-tls1_2) want_log='TLS handshake done: TLSv1\.2,' ;;
    tls13) oopts=(-tls1_3) want_log='TLS handshake done: TLSv1\.3,' ;;
    alpn)
        oopts=(-alpn h2)
        sopts+=(--alpn h2)
        want_log='TLS handshake done: .*, ALPN h2,'
        ;;
    mtls)
        oopts=(-cert "$CERTS/client.pem" -key "$CERTS/client.key")
        sopts+=(--ca "$CERTS/ca.pem")
        want_log='TLS handshake done: .*, peer verified'
        ;;
    *) die "unknown variant '$VARIANT' for s_client" ;;
    esac
    timeout $((T_RUN + 30)) "$STRATA" listen tls://127.0.0.1:0 --echo -v \
        "${sopts[@]}" 2>"$TMP/strata.log" &
    BG=$!
    wait_for 'grep -q "listening on" "$TMP/strata.log"' ||
        die "strata server did not start"
    PORT=$(sed -n 's/.* port \([0-9][0-9]*\)$/\1/p' "$TMP/strata.log")
    echo "strata echo server on port $PORT; openssl s_client ${oopts[*]}"
    # s_client ends at the end of its input (-no_ign_eof), so the input
    # stays open until the echo is complete.
    : >"$TMP/out.txt"
    {
        cat "$TMP/in.txt"
        for _ in $(seq $((T_RUN * 10))); do
            cmp -s "$TMP/in.txt" "$TMP/out.txt" && break
            sleep 0.1
        done
    } | timeout "$T_RUN" openssl s_client -connect "127.0.0.1:$PORT" \
        -CAfile "$CERTS/ca.pem" -verify_return_error \
        -verify_hostname localhost -quiet -no_ign_eof "${oopts[@]}" \
        >"$TMP/out.txt" 2>"$TMP/s_client.err" ||
        die "openssl s_client exited $?"
    cmp -s "$TMP/in.txt" "$TMP/out.txt" ||
        die "echo differs: $(cmp "$TMP/in.txt" "$TMP/out.txt" 2>&1)"
    # the connection's end (close_notify) is logged just after
    for _ in $(seq 50); do
        grep -q 'connection #1 closed' "$TMP/strata.log" && break
        sleep 0.1
    done
    grep -Eq "$want_log" "$TMP/strata.log" ||
        die "strata's log lacks /$want_log/"
    grep -q 'connection #1 closed' "$TMP/strata.log" ||
        die "strata did not log a clean end of the connection"
    kill -0 "$BG" 2>/dev/null || die "the strata server exited"
}

case $PEER in
s_server) strata_client ;;
s_client) strata_server ;;
*) die "unknown peer '$PEER' (s_server or s_client)" ;;
esac
echo "passed: $CASE"
