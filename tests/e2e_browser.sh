#!/usr/bin/env bash
# End-to-end test of `strata listen` as a web server for a real browser:
# headless Chromium (Debian's, driven by npm's playwright-core through
# tests/browser/browser_test.js) loads examples/web from strata over TLS and
# echoes text and binary messages of 0 B to 1 MiB through the page's
# WebSocket, closing with 1000. What Chromium itself reports (DevTools,
# its net-log) must show the way the WebSocket went:
#   1. wss:// (ALPN h2 and http/1.1): the page over HTTP/2 and the
#      WebSocket on that same connection (RFC 8441);
#   2. wss:// --alpn http/1.1: the page over HTTP/1.1, the WebSocket by an
#      HTTP/1.1 Upgrade;
#   3. ws+h2+tls://: the same as 1.
#
# Usage: bash e2e_browser.sh /path/to/strata
# Exit 77 (skipped) when /usr/bin/chromium is not installed; node and npm
# are required. playwright-core@1 is installed by npm beside the strata
# binary (node_modules_browser/) when it is not there yet; Playwright never
# downloads a browser. Certificates are made by tests/certs/make_certs.sh
# in a temporary folder and the server's key is the only one Chromium
# trusts (--ignore-certificate-errors-spki-list).
set -u

STRATA=${1:?usage: e2e_browser.sh /path/to/strata}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
CHROMIUM=/usr/bin/chromium
T=120        # seconds one browser run may take
T_SERVER=150 # a server lives through one browser run
T_NPM=240    # seconds npm may take to install playwright-core

if [ ! -x "$CHROMIUM" ]; then
    echo "skip: $CHROMIUM is not installed (apt-get install chromium)"
    exit 77
fi

. "$HERE/lib_e2e.sh"
e2e_init e2e_browser
C=$TMP/certs

if ! "$STRATA" --help | grep -q 'ws+h2+tls://'; then
    echo "skip: this strata has no tls, h2 or ws layer"
    exit 0
fi
for tool in node npm openssl; do
    if ! command -v "$tool" >/dev/null; then
        echo "FAIL: $tool not found (scripts/deps.sh installs it)" >&2
        exit 1
    fi
done

# playwright-core@1 beside the binary, once: a machine offline after the
# first run still passes. Its own folder, not the interop tests' one, so
# two npm runs under ctest -j never share a tree.
NODE_ROOT=$(cd "$(dirname "$STRATA")" && pwd)/node_modules_browser
PW=$NODE_ROOT/node_modules/playwright-core/package.json
if ! { [ -f "$PW" ] && grep -q '"version": "1\.' "$PW"; }; then
    mkdir -p "$NODE_ROOT" &&
        PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 timeout "$T_NPM" npm install \
            --prefix "$NODE_ROOT" --no-audit --no-fund --loglevel=error \
            playwright-core@1 >"$TMP/npm.log" 2>&1
    if ! [ -f "$PW" ]; then
        echo "FAIL: npm install playwright-core@1 into $NODE_ROOT failed" \
            "(offline?): $(cat "$TMP/npm.log")" >&2
        exit 1
    fi
fi
export NODE_PATH=$NODE_ROOT/node_modules

if ! bash "$HERE/certs/make_certs.sh" "$C" >/dev/null; then
    echo "FAIL: cannot make the test certificates (openssl?)" >&2
    exit 1
fi
# Chromium trusts exactly this key: base64 SHA-256 of its SubjectPublicKeyInfo.
SPKI=$(openssl x509 -in "$C/server.pem" -pubkey -noout |
    openssl pkey -pubin -outform der | openssl dgst -sha256 -binary |
    openssl base64 -A)
SITE=$ROOT/examples/web

# browser NAME URI EXPECT [listen options]: one strata server, one browser
# run against it; the browser's ok:/FAIL: lines are this script's.
browser() {
    local name=$1 uri=$2 expect=$3 rc
    shift 3
    local log=$TMP/$name.server.log out=$TMP/$name.out
    start_server "$uri" "$log" --cert "$C/server.pem" --key "$C/server.key" \
        --root "$SITE" --echo "$@" || return
    timeout "$T" node "$HERE/browser/browser_test.js" \
        --url "https://127.0.0.1:$PORT/" --expect "$expect" --spki "$SPKI" \
        --netlog "$TMP/$name.netlog.json" --chromium "$CHROMIUM" \
        >"$out" 2>"$TMP/$name.err"
    rc=$?
    sed "s/^ok: /ok: $name: /; s/^FAIL: /FAIL: $name: /" "$out"
    if [ "$rc" -ne 0 ] || grep -q '^FAIL: ' "$out"; then
        fail "$name: browser run exited $rc: $(cat "$TMP/$name.err")"
        echo "--- strata -v log:" >&2
        cat "$log" >&2
    elif ! kill -0 "$LPID" 2>/dev/null; then
        fail "$name: the server exited during the browser's run: $(cat "$log")"
    else
        pass "$name"
    fi
    stop_listener
}

browser wss_h2 'wss://127.0.0.1:0' h2
browser wss_alpn_http1 'wss://127.0.0.1:0' http1 --alpn http/1.1
browser ws_h2_tls 'ws+h2+tls://127.0.0.1:0' h2

e2e_finish
