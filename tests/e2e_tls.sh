#!/usr/bin/env bash
# End-to-end tests of TLS in the `strata` command-line tool: echo servers
# (`strata listen tls://... --echo --cert --key`) and clients
# (`strata connect tls://... --ca`) must give back exactly what went in over
# tls, wss (ws on tls), lines+tls and tls+ws (TLS inside a WebSocket); the
# client must check who the server is (CA, name, date, ALPN) and say why it
# refused, and a server must live through bad clients.
#
# Usage: bash e2e_tls.sh /path/to/strata
# Certificates are made by tests/certs/make_certs.sh in a temporary folder.
# Servers listen on port 0 and the port is read from their -v log; a
# client that checks the name "localhost" talks to a server listening on
# "localhost", so both take the same address. Every command runs under
# `timeout`; background servers are killed on exit. Each failure is
# printed; the exit status is 1 if any.
set -u

STRATA=${1:?usage: e2e_tls.sh /path/to/strata}
HERE=$(cd "$(dirname "$0")" && pwd)
T=30         # seconds any one command may take
T_SERVER=110 # a server lives through a group of cases (see e2e_cli.sh)

. "$HERE/lib_e2e.sh"
e2e_init e2e_tls
C=$TMP/certs

if ! "$STRATA" --help | grep -q 'tls://'; then
    echo "skip: this strata has no tls layer"
    exit 0
fi
if ! bash "$HERE/certs/make_certs.sh" "$C" >/dev/null; then
    echo "FAIL: cannot make the test certificates (openssl?)" >&2
    exit 1
fi
SERVER=(--cert "$C/server.pem" --key "$C/server.key")
# every listener serves the good certificate unless a case sets LOPTS
LOPTS="${SERVER[*]}"

# ---- inputs ----
head -c 1048576 /dev/urandom >"$TMP/random.bin"
awk 'BEGIN { srand(11); for (i = 0; i < 3000; i++) {
        n = (i % 89 == 0) ? 2000 : int(rand() * 80); s = "";
        for (j = 0; j < n; j++) s = s sprintf("%c", 32 + int(rand() * 95));
        print s } }' >"$TMP/lines.txt"
printf 'one\ntwo\n' >"$TMP/two.txt"
: >"$TMP/empty"

# ---- echo round trips ----
# The server's identity is checked by name (localhost) and by IP address.
roundtrip tls_binary_1MiB 'tls://localhost:@PORT@' \
    "$TMP/random.bin" "$TMP/random.bin" --ca "$C/ca.pem" -v
log_has tls_binary_1MiB "$TMP/tls_binary_1MiB.err" \
    'TLS handshake done: TLSv1\.[23], .*peer verified'
log_has tls_binary_1MiB "$TMP/tls_binary_1MiB.err" 'close_notify sent'
log_has tls_binary_1MiB "$TMP/tls_binary_1MiB.err" "peer's close_notify received"
log_has tls_binary_1MiB "$TMP/tls_binary_1MiB.server.log" \
    'connection #1: TLS handshake done'
roundtrip tls_by_ip_address 'tls://127.0.0.1:@PORT@' \
    "$TMP/lines.txt" "$TMP/lines.txt" --ca "$C/ca.pem"
roundtrip tls_empty_input 'tls://localhost:@PORT@' "$TMP/empty" "$TMP/empty" \
    --ca "$C/ca.pem"
roundtrip tls_unix "tls+unix://$TMP/tls.sock" \
    "$TMP/random.bin" "$TMP/random.bin" --ca "$C/ca.pem"
roundtrip lines_tls 'lines+tls://localhost:@PORT@' \
    "$TMP/lines.txt" "$TMP/lines.txt" --ca "$C/ca.pem"
roundtrip len_tls_binary 'len+tls://127.0.0.1:@PORT@' \
    "$TMP/random.bin" "$TMP/random.bin" --ca "$C/ca.pem" --binary
roundtrip wss_lines 'wss://localhost:@PORT@/echo' \
    "$TMP/lines.txt" "$TMP/lines.txt" --ca "$C/ca.pem" -v
log_has wss_lines "$TMP/wss_lines.err" 'WebSocket open'
log_has wss_lines "$TMP/wss_lines.err" 'closed by peer: 1000'
roundtrip wss_binary_1MiB 'wss://localhost:@PORT@/bin' \
    "$TMP/random.bin" "$TMP/random.bin" --ca "$C/ca.pem" --binary
roundtrip ws_tls_unix_lines "ws+tls+unix://$TMP/wss.sock" \
    "$TMP/lines.txt" "$TMP/lines.txt" --ca "$C/ca.pem"
# TLS inside a WebSocket: each record one ws message, bytes on top.
roundtrip tls_in_ws_1MiB 'tls+ws://localhost:@PORT@/tunnel' \
    "$TMP/random.bin" "$TMP/random.bin" --ca "$C/ca.pem"
roundtrip lines_tls_in_ws 'lines+tls+ws://127.0.0.1:@PORT@' \
    "$TMP/lines.txt" "$TMP/lines.txt" --ca "$C/ca.pem"
# ALPN: the one protocol both lists have is agreed.
LOPTS="${SERVER[*]} --alpn h2,http/1.1" roundtrip alpn_agreed \
    'tls://localhost:@PORT@' "$TMP/two.txt" "$TMP/two.txt" \
    --ca "$C/ca.pem" --alpn foo,h2 -v
log_has alpn_agreed "$TMP/alpn_agreed.err" 'ALPN h2,'
log_has alpn_agreed "$TMP/alpn_agreed.server.log" 'ALPN h2,'
# Mutual TLS: a server given --ca requires a client certificate.
LOPTS="${SERVER[*]} --ca $C/ca.pem" roundtrip mutual_tls \
    'lines+tls://localhost:@PORT@' "$TMP/two.txt" "$TMP/two.txt" \
    --ca "$C/ca.pem" --cert "$C/client.pem" --key "$C/client.key"
log_has mutual_tls "$TMP/mutual_tls.server.log" 'peer verified'

# ---- refusals: the client says why and exits 1 ----
# refused NAME CODE PATTERN URI [connect options]: against the running
# server (LPID, PORT); the URI holds @PORT@.
refused() {
    local name=$1 code=$2 pattern=$3 uri=$4
    shift 4
    IN=$TMP/two.txt expect_exit "$name" "$code" "$pattern" \
        "$STRATA" connect "${uri/@PORT@/$PORT}" "$@"
}

# A server whose certificate no CA we know signed: refused by default,
# accepted by --insecure (which is logged).
if LOPTS="--cert $C/rogue.pem --key $C/rogue.key" \
    start_listener 'tls://localhost:0' "$TMP/rogue.log"; then
    refused untrusted_ca_refused 1 '^strata: tls: .*(verify|signer).*unknown_ca' \
        'tls://localhost:@PORT@' --ca "$C/ca.pem"
    refused untrusted_system_store_refused 1 \
        '^strata: (tls: |cannot set up layer .tls.)' \
        'tls://localhost:@PORT@'
    if timeout "$T" "$STRATA" connect "tls://localhost:$PORT" --insecure -v \
        <"$TMP/two.txt" >"$TMP/insecure.out" 2>"$TMP/insecure.err" &&
        cmp -s "$TMP/two.txt" "$TMP/insecure.out" &&
        grep -q 'will not be verified' "$TMP/insecure.err" &&
        grep -q 'peer not verified' "$TMP/insecure.err"; then
        pass insecure_accepts_rogue
    else
        fail "insecure_accepts_rogue: $(cat "$TMP/insecure.err")"
    fi
    log_has untrusted_ca_refused "$TMP/rogue.log" \
        'connection #1: tls: .*peer sent alert unknown_ca'
    stop_listener
fi
# The certificate names other.test only.
if LOPTS="--cert $C/other.pem --key $C/other.key" \
    start_listener 'tls://localhost:0' "$TMP/other.log"; then
    refused hostname_mismatch 1 '^strata: tls: .*name mismatch.*bad_certificate' \
        'tls://localhost:@PORT@' --ca "$C/ca.pem"
    refused ip_address_mismatch 1 '^strata: tls: .*ip address mismatch' \
        'tls://127.0.0.1:@PORT@' --ca "$C/ca.pem"
    stop_listener
fi
if LOPTS="--cert $C/expired.pem --key $C/expired.key" \
    start_listener 'tls://localhost:0' "$TMP/expired.log"; then
    refused expired_certificate 1 '^strata: tls: .*certificate_expired' \
        'tls://localhost:@PORT@' --ca "$C/ca.pem"
    stop_listener
fi

# One server through bad clients of every kind; it must still serve a
# good one afterwards, and log each failure with its reason.
if LOPTS="${SERVER[*]} --alpn h2" \
    start_listener 'tls://localhost:0' "$TMP/robust.log"; then
    refused alpn_mismatch 1 'no_application_protocol' \
        'tls://localhost:@PORT@' --ca "$C/ca.pem" --alpn http/1.1
    # Garbage, and a plain-text request, instead of a ClientHello.
    timeout "$T" bash -c 'cat "$1" >/dev/tcp/127.0.0.1/"$2"' _ \
        "$TMP/random.bin" "$PORT" 2>/dev/null
    timeout "$T" bash -c \
        'printf "GET / HTTP/1.1\r\n\r\n" >/dev/tcp/127.0.0.1/"$1"' _ "$PORT" \
        2>/dev/null
    # A client that connects and leaves during the handshake.
    timeout "$T" bash -c 'exec 3<>/dev/tcp/127.0.0.1/"$1"; exec 3>&-' _ \
        "$PORT" 2>/dev/null
    # A client that speaks no TLS at all (plain tcp).
    IN=$TMP/two.txt timeout "$T" "$STRATA" connect "tcp://127.0.0.1:$PORT" \
        --binary >/dev/null 2>&1
    if timeout "$T" "$STRATA" connect "tls://localhost:$PORT" \
        --ca "$C/ca.pem" --alpn h2 <"$TMP/lines.txt" >"$TMP/robust.out" \
        2>"$TMP/robust.err" && cmp -s "$TMP/lines.txt" "$TMP/robust.out"; then
        pass server_survives_bad_clients
    else
        fail "server_survives_bad_clients: $(cat "$TMP/robust.err")"
    fi
    if ! kill -0 "$LPID" 2>/dev/null; then
        fail "server_survives_bad_clients: the server exited:" \
            "$(cat "$TMP/robust.log")"
    fi
    n=$(grep -c 'connection #[0-9]*: tls: ' "$TMP/robust.log")
    if [ "$n" -lt 3 ]; then
        fail "server_logs_failures: $n TLS failures logged, expected >= 3:" \
            "$(cat "$TMP/robust.log")"
    else
        pass server_logs_failures
    fi
    log_has server_logs_failures "$TMP/robust.log" \
        'tls: .*sent alert no_application_protocol'
    stop_listener
fi

# Many clients at once on one server.
if start_listener 'lines+tls://localhost:0' "$TMP/many.log"; then
    cpids=()
    for i in 1 2 3 4; do
        head -n $((i * 500)) "$TMP/lines.txt" >"$TMP/many.in$i"
        timeout "$T" "$STRATA" connect "lines+tls://localhost:$PORT" \
            --ca "$C/ca.pem" <"$TMP/many.in$i" >"$TMP/many.out$i" \
            2>"$TMP/many.err$i" &
        cpids+=($!)
    done
    ok=1
    for i in 1 2 3 4; do
        if ! wait "${cpids[$((i - 1))]}" ||
            ! cmp -s "$TMP/many.in$i" "$TMP/many.out$i"; then
            fail "many_clients: client $i: $(cat "$TMP/many.err$i")"
            ok=0
        fi
    done
    [ "$ok" -eq 1 ] && pass many_clients
    stop_listener
fi

# A TLS client to a server that does not speak TLS: a tcp echo server
# sends the ClientHello back.
if LOPTS="" start_listener 'tcp://127.0.0.1:0' "$TMP/plain.log" --once; then
    refused tls_to_plain_tcp 1 '^strata: tls: ' 'tls://127.0.0.1:@PORT@' \
        --ca "$C/ca.pem"
    wait "$LPID"
fi
refused_port=
if start_listener 'tls://127.0.0.1:0' "$TMP/refused.log"; then
    refused_port=$PORT
    stop_listener
    expect_exit connection_refused 1 'cannot connect to .*refused' \
        "$STRATA" connect "tls://127.0.0.1:$refused_port" --ca "$C/ca.pem"
fi

# A server that ends the connection without close_notify after sending:
# the client prints what came, then says the connection was cut (exit 1).
cat >"$TMP/cut.py" <<'PY'
import os, socket, ssl, sys
cert, key, portfile = sys.argv[1:4]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(1)
with open(portfile + ".tmp", "w") as f:
    f.write(str(srv.getsockname()[1]))
os.rename(portfile + ".tmp", portfile)
srv.settimeout(20)
c, _ = srv.accept()
s = ctx.wrap_socket(c, server_side=True)
s.sendall(b"partial answer\n")
s.close()  # without unwrap(): no close_notify
PY
timeout "$T" python3 "$TMP/cut.py" "$C/server.pem" "$C/server.key" \
    "$TMP/cut.port" 2>"$TMP/cut.err" &
cut_pid=$!
PIDS+=("$cut_pid")
for i in $(seq 200); do
    [ -s "$TMP/cut.port" ] && break
    sleep 0.05
done
if [ -s "$TMP/cut.port" ]; then
    # stdin stays open (a fifo we hold): only the cut may end the client
    mkfifo "$TMP/cut.fifo"
    exec 7<>"$TMP/cut.fifo"
    timeout "$T" "$STRATA" connect "tls://127.0.0.1:$(cat "$TMP/cut.port")" \
        --ca "$C/ca.pem" <&7 >"$TMP/cut.out" 2>"$TMP/cut.cli"
    rc=$?
    exec 7>&-
    if [ "$rc" -ne 1 ] ||
        ! grep -q '^strata: connection cut without close_notify$' \
            "$TMP/cut.cli"; then
        fail "truncated: exit $rc: $(cat "$TMP/cut.cli")"
    elif [ "$(cat "$TMP/cut.out")" != "partial answer" ]; then
        fail "truncated: output '$(cat "$TMP/cut.out")'"
    else
        pass truncated
    fi
else
    fail "truncated: python TLS server did not start: $(cat "$TMP/cut.err")"
fi
wait "$cut_pid" 2>/dev/null

# ---- usage ----
expect_exit server_without_cert 2 'a TLS server needs its certificate and key' \
    "$STRATA" listen tls://127.0.0.1:0 --echo
expect_exit wss_server_without_cert 2 'a TLS server needs its certificate' \
    "$STRATA" listen wss://127.0.0.1:0 --echo --once
expect_exit cert_without_key 2 '--cert and --key go together' \
    "$STRATA" listen tls://127.0.0.1:0 --echo --cert "$C/server.pem"
expect_exit insecure_on_listen 2 "--insecure is an option of 'connect'" \
    "$STRATA" listen tls://127.0.0.1:0 --echo "${SERVER[@]}" --insecure
expect_exit tls_option_without_tls 2 'options of a URI with a tls layer' \
    "$STRATA" connect lines://127.0.0.1:1 --ca "$C/ca.pem"
expect_exit ca_needs_file 2 '--ca needs a FILE' \
    "$STRATA" connect tls://127.0.0.1:1 --ca
expect_exit missing_ca_file 1 "cannot read CA file '.*nope.pem': No such file" \
    "$STRATA" connect tls://127.0.0.1:1 --ca "$C/nope.pem"
expect_exit bad_key_file 1 "cannot load certificate '.*' and key '.*'" \
    "$STRATA" listen tls://127.0.0.1:0 --echo --cert "$C/server.key" \
    --key "$C/server.key"
expect_exit bad_alpn_list 1 "bad ALPN list ',h2'" \
    "$STRATA" connect tls://127.0.0.1:1 --alpn ,h2
# Options may come before the URI and the command.
expect_exit options_first 2 'a TLS server needs its certificate and key' \
    "$STRATA" --alpn h2 listen --echo tls://127.0.0.1:0
expect_exit tls_on_lines 2 "'tls' goes right on the transport" \
    "$STRATA" connect tls+lines://127.0.0.1:1
expect_exit lines_on_wss 2 \
    "'ws' must be the top \(first\) layer or sit under 'tls'" \
    "$STRATA" connect lines+wss://127.0.0.1:1

for opt in --help -h; do
    if timeout "$T" "$STRATA" "$opt" >"$TMP/help.out" 2>&1 &&
        grep -q -- '--cert FILE' "$TMP/help.out" &&
        grep -q -- '--key FILE' "$TMP/help.out" &&
        grep -q -- '--ca FILE' "$TMP/help.out" &&
        grep -q -- '--insecure' "$TMP/help.out" &&
        grep -q -- '--alpn LIST' "$TMP/help.out" &&
        grep -q 'wss://' "$TMP/help.out"; then
        pass "help $opt"
    else
        fail "help $opt: $(cat "$TMP/help.out")"
    fi
done

e2e_finish
