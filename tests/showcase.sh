#!/usr/bin/env bash
# The README's showcase (examples/showcase.c) as a test. It must exit 0
# (every echo matched, every layer closed cleanly), its table must name
# every layer of both stacks at both ends in order, and at every tap what
# one end sent the other must have received.
# Usage: showcase.sh SHOWCASE MAKE_CERTS_SH CERTS_DIR
set -euo pipefail

if [ $# -ne 3 ]; then
    echo "usage: $0 SHOWCASE MAKE_CERTS_SH CERTS_DIR" >&2
    exit 2
fi
showcase=$1
certs=$3
bash "$2" "$certs" >/dev/null

fail() {
    echo "showcase test: $*" >&2
    printf '%s\n' "$out" >&2
    exit 1
}

rc=0
out=$("$showcase" "$certs/ca.pem" "$certs/server.pem" "$certs/server.key") ||
    rc=$?
[ "$rc" -eq 0 ] || fail "exit status $rc"

# Every layer row, top to bottom: client then server, stack 1 then 2.
layers=$(printf '%s\n' "$out" | awk '/^  (app|ws|h2|tls|tcp) / { print $1 }' |
    tr '\n' ' ')
want="app ws h2 tls tcp app ws h2 tls tcp app tls ws tcp app tls ws tcp "
[ "$layers" = "$want" ] || fail "layers: '$layers', want '$want'"

for s in "== 1. WebSocket over HTTP/2 over TLS over TCP (RFC 8441)" \
         "== 2. TLS inside a WebSocket over TCP" \
         "CONNECT :protocol websocket :path /showcase -> :status 200" \
         "extended CONNECT -> :status 200" "ALPN h2" \
         "server certificate verified" "every echo matched"; do
    printf '%s\n' "$out" | grep -qF -- "$s" || fail "no '$s'"
done
[ "$(printf '%s\n' "$out" | grep -c 'echoed, matches')" -eq 8 ] ||
    fail "not 8 echoes"
[ "$(printf '%s\n' "$out" | grep -c "the peer's close code 1000")" -eq 4 ] ||
    fail "not 4 WebSocket closes with 1000"
[ "$(printf '%s\n' "$out" | grep -c 'close_notify both ways')" -eq 4 ] ||
    fail "not 4 TLS ends with close_notify"

# At each tap (the kernel's line aside: it counts FIN and retransmissions)
# the client's sent is the server's received, and the other way round.
bad=$(printf '%s\n' "$out" | awk '
    /^== / { stack = $2 }
    /^client / { side = "c" } /^server / { side = "s" }
    /^    \|   / && !/kernel/ && / B / {
        label = substr($0, 9, 25)
        n = 0
        line = $0
        while (match(line, /[0-9]+ B/)) {
            v[++n] = substr(line, RSTART, RLENGTH - 2)
            line = substr(line, RSTART + RLENGTH)
        }
        if (n != 2) { print "unreadable: " $0; next }
        key = stack "|" label
        sent[key, side] = v[1]; recv[key, side] = v[2]; keys[key] = 1
    }
    END {
        for (k in keys) {
            if (sent[k, "c"] == "" || sent[k, "s"] == "")
                print k ": not at both ends"
            else if (sent[k, "c"] != recv[k, "s"] || sent[k, "s"] != recv[k, "c"])
                print k ": " sent[k, "c"] "/" recv[k, "c"] " vs " sent[k, "s"] "/" recv[k, "s"]
            count++
        }
        if (count != 6) print count " taps, want 6"
    }')
[ -z "$bad" ] || fail "taps disagree: $bad"
echo "showcase: ok"
