#!/usr/bin/env bash
# End-to-end tests of the browsers' front (adapters/web.h) in the `strata`
# tool: a wss:// or ws+h2+tls:// listener offers ALPN h2 and http/1.1 on
# one port, answers plain requests from --root (or a default page), and
# takes WebSockets both ways (RFC 8441 and HTTP/1.1 Upgrade). Real peers:
# curl (HTTP/2 and HTTP/1.1), nghttp (several streams on one connection),
# openssl s_client (ALPN the server does not offer), python3 websockets
# (HTTP/1.1 Upgrade) and the tool's own client (RFC 8441). Bad requests
# must get their status, nothing from outside the root, and leave the
# connection and its other streams working.
#
# Usage: bash e2e_web.sh /path/to/strata
set -u

STRATA=${1:?usage: e2e_web.sh /path/to/strata}
HERE=$(cd "$(dirname "$0")" && pwd)
T=30
T_SERVER=110
PY=/usr/bin/python3

. "$HERE/lib_e2e.sh"
e2e_init e2e_web
C=$TMP/certs

if ! "$STRATA" --help | grep -q -- '--root'; then
    echo "skip: this strata has no web front (needs ws, h2 and tls)"
    exit 0
fi
for p in curl nghttp openssl; do
    command -v "$p" >/dev/null || { echo "FAIL: $p not found" >&2; exit 1; }
done
bash "$HERE/certs/make_certs.sh" "$C" >/dev/null ||
    { echo "FAIL: cannot make the test certificates" >&2; exit 1; }
SERVER=(--cert "$C/server.pem" --key "$C/server.key")

# ---- the site: files of each type, a secret outside it, links ----
ROOT=$TMP/site
mkdir -p "$ROOT/sub" "$ROOT/noindex" "$ROOT/.hidden"
printf '<!doctype html><title>t</title><p>index</p>\n' >"$ROOT/index.html"
printf '<p>sub</p>\n' >"$ROOT/sub/index.html"
printf 'console.log(1);\n' >"$ROOT/app.js"
printf 'p { color: red }\n' >"$ROOT/s.css"
printf '{"a": 1}\n' >"$ROOT/d.json"
printf '<svg xmlns="http://www.w3.org/2000/svg"/>\n' >"$ROOT/i.svg"
printf '\x89PNG\r\n\x1a\n' >"$ROOT/i.png"
printf 'hidden\n' >"$ROOT/.hidden/x.txt"
printf 'a space\n' >"$ROOT/a b.txt"
head -c 1048576 /dev/urandom >"$ROOT/big.bin"
printf 'SECRET-OUTSIDE\n' >"$TMP/secret.txt"
ln -s "$TMP/secret.txt" "$ROOT/out.txt"
ln -s "$TMP" "$ROOT/outdir"
ln -s app.js "$ROOT/in.js"

start_server "wss://127.0.0.1:0" "$TMP/srv.log" --echo --root "$ROOT" \
    "${SERVER[@]}" || exit 1
BASE=https://127.0.0.1:$PORT

# get NAME WANT_CODE [curl options] URL: the status, and the body in
# $TMP/NAME.body, headers in $TMP/NAME.head.
get() {
    local name=$1 want=$2 code
    shift 2
    code=$(timeout "$T" curl -sk -o "$TMP/$name.body" -D "$TMP/$name.head" \
           -w '%{http_code} %{http_version}' "$@")
    if [ "${code%% *}" != "$want" ]; then
        fail "$name: status $code, expected $want"
        return 1
    fi
    pass "$name ($code)"
}

# not_secret NAME: the body holds nothing from outside the root.
not_secret() {
    if grep -q SECRET-OUTSIDE "$TMP/$1.body" 2>/dev/null; then
        fail "$1: served a file from outside the root"
    fi
}

head_has() {
    if grep -qi -- "$2" "$TMP/$1.head"; then
        pass "$1: header $2"
    else
        fail "$1: headers lack $2: $(cat "$TMP/$1.head")"
    fi
}

# ---- files, both ways, content types ----
for v in http2 http1.1; do
    get "index_$v" 200 "--$v" "$BASE/" &&
        cmp -s "$TMP/index_$v.body" "$ROOT/index.html" ||
        fail "index_$v: body differs"
    head_has "index_$v" 'content-type: text/html'
    head_has "index_$v" 'x-content-type-options: nosniff'
    get "big_$v" 200 "--$v" "$BASE/big.bin" &&
        { cmp -s "$TMP/big_$v.body" "$ROOT/big.bin" && pass "big_$v: bytes"; } ||
        fail "big_$v: 1 MiB body differs"
    get "sub_$v" 200 "--$v" "$BASE/sub/" && head_has "sub_$v" 'text/html'
    get "space_$v" 200 "--$v" "$BASE/a%20b.txt"
    get "link_inside_$v" 200 "--$v" "$BASE/in.js"
done
get type_js 200 --http2 "$BASE/app.js" && head_has type_js 'text/javascript'
get type_css 200 --http2 "$BASE/s.css" && head_has type_css 'text/css'
get type_json 200 --http2 "$BASE/d.json" &&
    head_has type_json 'application/json'
get type_svg 200 --http2 "$BASE/i.svg" && head_has type_svg 'image/svg+xml'
get type_png 200 --http1.1 "$BASE/i.png" && head_has type_png 'image/png'
get head_h2 200 --http2 -I "$BASE/big.bin" &&
    head_has head_h2 'content-length: 1048576'
get head_h1 200 --http1.1 -I "$BASE/big.bin" &&
    head_has head_h1 'content-length: 1048576'

# ---- no escape from the root ----
for v in http2 http1.1; do
    get "dotdot_$v" 400 "--$v" --path-as-is "$BASE/../secret.txt"
    not_secret "dotdot_$v"
    get "enc_dotdot_$v" 400 "--$v" --path-as-is "$BASE/%2e%2e/secret.txt"
    not_secret "enc_dotdot_$v"
    get "enc_mixed_$v" 400 "--$v" --path-as-is "$BASE/sub/.%2E/../secret.txt"
    get "enc_slash_$v" 400 "--$v" --path-as-is "$BASE/..%2fsecret.txt"
    get "absolute_$v" 404 "--$v" --path-as-is "$BASE//$TMP/secret.txt"
    not_secret "absolute_$v"
    get "symlink_out_$v" 404 "--$v" "$BASE/out.txt"
    not_secret "symlink_out_$v"
    get "symlink_dir_out_$v" 404 "--$v" "$BASE/outdir/secret.txt"
    not_secret "symlink_dir_out_$v"
    get "hidden_$v" 404 "--$v" "$BASE/.hidden/x.txt"
    get "missing_$v" 404 "--$v" "$BASE/nope.html"
    get "noindex_$v" 404 "--$v" "$BASE/noindex/"
    get "nul_$v" 400 "--$v" "$BASE/a%00b"
    get "post_$v" 405 "--$v" -X POST -d x "$BASE/"
    head_has "post_$v" 'allow: GET, HEAD'
    get "brew_$v" 501 "--$v" -X BREW "$BASE/"
done
# HTTP/1.1 absolute-form is not a path: refused, not served
get absolute_form 400 --http1.1 --request-target "http://x$TMP/secret.txt" \
    "$BASE/"
not_secret absolute_form

# ---- bad requests leave the rest working ----
# one HTTP/2 connection: refused streams and good ones beside it, each
# with its own status (nghttp -s lists every stream's code and path)
timeout "$T" nghttp -n -s "$BASE/%2e%2e/secret.txt" "$BASE/big.bin" \
    "$BASE/nope" "$BASE/app.js" >"$TMP/multi.out" 2>&1
codes=$(awk '$NF ~ /^\// && $(NF-2) ~ /^[0-9]+$/ { print $(NF-2), $NF }' \
        "$TMP/multi.out" | sort -k2 | tr '\n' ' ')
if [ "$codes" = "400 /%2e%2e/secret.txt 200 /app.js 200 /big.bin 404 /nope " ]
then
    pass "h2_streams_unharmed: $codes"
else
    fail "h2_streams_unharmed: '$codes': $(cat "$TMP/multi.out")"
fi
# one HTTP/1.1 connection: a 400 then a 200 on the same keep-alive
timeout "$T" curl -sk --http1.1 -v --path-as-is -o /dev/null \
    "$BASE/%2e%2e/x" -o "$TMP/after.body" "$BASE/app.js" 2>"$TMP/keep.err"
if grep -q 'Re-using existing connection' "$TMP/keep.err" &&
    cmp -s "$TMP/after.body" "$ROOT/app.js"; then
    pass "h1_keepalive_after_400"
else
    fail "h1_keepalive_after_400: $(grep -E '^[<*]' "$TMP/keep.err" | head -20)"
fi
# a huge header: 431, over HTTP/1.1 (the front) and HTTP/2 (the h2 layer)
big=$(head -c 70000 /dev/zero | tr '\0' a)
get huge_h1 431 --http1.1 -H "X-Big: $big" "$BASE/"
# over HTTP/2 a header list past the h2 layer's 64 KiB gets 431 on its
# stream, and a request beside it on the same connection its 200
H2PY='
import socket, ssl, sys, h2.connection, h2.events, h2.config
ctx = ssl.create_default_context(cafile=sys.argv[2])
ctx.check_hostname = False
ctx.set_alpn_protocols(["h2"])
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1]))))
c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
c.initiate_connection()
base = [(":method", "GET"), (":scheme", "https"), (":authority", "x"),
        (":path", "/app.js")]
c.send_headers(1, base + [("x-b%d" % i, "a" * 20000) for i in range(4)],
               end_stream=True)
c.send_headers(3, base, end_stream=True)
s.sendall(c.data_to_send())
status, ended = {}, set()
while len(ended) < 2:
    d = s.recv(65536)
    if not d:
        sys.exit("connection closed")
    for e in c.receive_data(d):
        if isinstance(e, h2.events.ResponseReceived):
            status[e.stream_id] = dict(e.headers)[b":status"].decode()
        elif isinstance(e, (h2.events.StreamEnded, h2.events.StreamReset)):
            ended.add(e.stream_id)
        elif isinstance(e, h2.events.ConnectionTerminated):
            sys.exit("GOAWAY %d" % e.error_code)
    s.sendall(c.data_to_send())
print(status.get(1), status.get(3))
'
if timeout "$T" "$PY" -c "$H2PY" "$PORT" "$C/ca.pem" >"$TMP/h2big.out" 2>&1 &&
    [ "$(cat "$TMP/h2big.out")" = "431 200" ]; then
    pass "huge_h2: 431 on its stream, 200 beside it"
else
    fail "huge_h2: $(cat "$TMP/h2big.out")"
fi
get after_huge 200 --http2 "$BASE/app.js"

# ---- ALPN ----
# offered something we do not serve: the handshake fails with the alert
timeout "$T" openssl s_client -connect "127.0.0.1:$PORT" -alpn foo \
    </dev/null >"$TMP/alpn.out" 2>&1
if grep -qi 'no application protocol\|alert number 120' "$TMP/alpn.out"; then
    pass "alpn_foo_refused (no_application_protocol)"
else
    fail "alpn_foo_refused: $(tail -5 "$TMP/alpn.out")"
fi
log_has alpn_foo_refused "$TMP/srv.log" 'no_application_protocol'

# ---- WebSockets, both ways, on the same listener ----
printf 'over h2\n' >"$TMP/h2.in"
timeout "$T" "$STRATA" connect "ws+h2+tls://127.0.0.1:$PORT/ws" \
    --ca "$C/ca.pem" -v <"$TMP/h2.in" >"$TMP/h2.out" 2>"$TMP/h2.err"
if cmp -s "$TMP/h2.in" "$TMP/h2.out"; then
    pass "ws_over_h2 (RFC 8441)"
else
    fail "ws_over_h2: $(cat "$TMP/h2.err")"
fi
log_has ws_over_h2 "$TMP/srv.log" 'CONNECT /ws :protocol websocket'
WSPY='
import asyncio, ssl, sys, websockets
async def main():
    ctx = ssl.create_default_context(cafile=sys.argv[2])
    ctx.check_hostname = False
    ctx.set_alpn_protocols(["http/1.1"])
    async with websockets.connect(sys.argv[1], ssl=ctx, max_size=None) as w:
        for n in (0, 125, 65536, 1 << 20):
            data = bytes(i % 251 for i in range(n))
            await w.send(data)
            if await w.recv() != data:
                sys.exit("binary %d differs" % n)
        await w.send("héllo")
        if await w.recv() != "héllo":
            sys.exit("text differs")
    print("ok", w.close_code)
asyncio.run(main())
'
if timeout "$T" "$PY" -c "$WSPY" "wss://127.0.0.1:$PORT/ws" "$C/ca.pem" \
    >"$TMP/py.out" 2>&1 && grep -q '^ok 1000' "$TMP/py.out"; then
    pass "ws_over_http1 (python websockets, Upgrade)"
else
    fail "ws_over_http1: $(cat "$TMP/py.out")"
fi
log_has ws_over_http1 "$TMP/srv.log" 'GET /ws: WebSocket \(HTTP/1.1 Upgrade\)'
stop_listener

# ---- --alpn narrows: http/1.1 only ----
start_server "ws+h2+tls://127.0.0.1:0" "$TMP/h1.log" --echo --alpn http/1.1 \
    "${SERVER[@]}" || exit 1
get narrowed_page 200 "https://127.0.0.1:$PORT/"
if grep -q '^HTTP/1.1 200' "$TMP/narrowed_page.head" &&
    grep -qi 'text/html' "$TMP/narrowed_page.head" &&
    grep -q strata "$TMP/narrowed_page.body"; then
    pass "narrowed_page: the default page over HTTP/1.1"
else
    fail "narrowed_page: $(cat "$TMP/narrowed_page.head")"
fi
get no_root_404 404 "https://127.0.0.1:$PORT/x.html"
if timeout "$T" "$PY" -c "$WSPY" "wss://127.0.0.1:$PORT/ws" "$C/ca.pem" \
    >"$TMP/py2.out" 2>&1 && grep -q '^ok 1000' "$TMP/py2.out"; then
    pass "narrowed_ws_over_http1"
else
    fail "narrowed_ws_over_http1: $(cat "$TMP/py2.out")"
fi
expect_exit narrowed_no_h2 1 'ALPN|alert|no_application_protocol|handshake' \
    "$STRATA" connect "ws+h2+tls://127.0.0.1:$PORT/ws" --ca "$C/ca.pem"
stop_listener

# ---- usage ----
expect_exit root_not_dir 1 'not a directory' "$STRATA" listen \
    wss://127.0.0.1:0 --echo --root "$TMP/secret.txt" "${SERVER[@]}"
expect_exit root_wrong_uri 2 'wss:// or ws\+h2\+tls://' "$STRATA" listen \
    tcp://127.0.0.1:0 --echo --root "$ROOT"
expect_exit alpn_other 2 'h2, http/1.1 or both' "$STRATA" listen \
    wss://127.0.0.1:0 --echo --alpn foo "${SERVER[@]}"

e2e_finish
