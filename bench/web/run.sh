#!/usr/bin/env bash
# bench/web/run.sh: the strata tool serving static files (web mode:
# `strata listen wss://... --root DIR --echo`) against nghttpd serving the
# same folder, both over TLS, in one run (see bench/README.md, "Web").
#
#  1. Small files: h2load -n N -c 10 -m 10 -t 1 of a 1 KiB file over TLS
#     h2 against each server; and over HTTP/1.1 (h2load --h1) against
#     strata alone (nghttpd speaks only HTTP/2): pipelined 10 deep (the
#     same load as the h2 rows) and, as browsers do, not pipelined (-m 1).
#     req/s, the server's cpu per request; strata / nghttpd and strata's
#     h1 / h2.
#  2. A large file: h2load -n M -c 4 -m 1 -t 1 of a 1 MiB file over TLS
#     h2: MB/s (10^6 body bytes per second), the server's cpu per file;
#     strata / nghttpd.
#  3. Each server's resident memory: at start, its peak after phase 1 and
#     at the end (VmRSS, VmHWM).
# Both servers get one thread (strata is one; nghttpd's default -n 1 is
# passed explicitly) and the same certificate (P-256); h2load offers both
# the same TLS 1.3 suite (--cipher) and group (P-256: nghttpd has no
# X25519), so the key exchange and the bulk cipher are the same algorithms
# on both sides, each in its own library (strata: wolfSSL; nghttpd:
# OpenSSL). Placement as bench/h2/run.sh: servers on the second usable
# cpu, h2load on the first. Reps are interleaved, the order rotating so
# that no server always goes first; medians and the range over the reps.
# Before timing, curl fetches both files from every server (and over
# HTTP/1.1 from strata) and compares them byte for byte; every h2load run
# must count every answer 2xx with the file's bytes, on the protocol asked.
# Exit status: 0 whatever the figures say (benchmarks report), 1 when a
# check or a measurement failed, 77 (skipped) when h2load, nghttpd, curl
# or openssl is missing.
set -u
# shellcheck source=bench/lib_bench.sh
. "$(dirname "$0")/../lib_bench.sh" bench_web

usage() {
    cat <<'EOF'
usage: bench/web/run.sh [--quick] [--strata PATH] [--nghttpd PATH]
                        [--reps R] [--requests N] [--big-requests M]
                        [--cipher SUITE] [--no-pin] [--verbose]
  --quick           smoke run, a few seconds: 1 rep, 2000 small
                    requests, 20 large ones
  --strata PATH     the strata tool (default build/strata under the
                    source tree)
  --nghttpd PATH    nghttpd (default: the one on PATH)
  --reps R          measurements per row (default 5)
  --requests N      small-file requests per measurement (50000)
  --big-requests M  1 MiB requests per measurement (200)
  --cipher SUITE    the TLS 1.3 suite h2load offers
                    (default TLS_AES_128_GCM_SHA256)
  --no-pin          no taskset
  --verbose         every measurement, not only the medians
EOF
}

QUICK=0 REPS=5 REQS=50000 BIGREQS=200 STRATA= NGHTTPD= PIN=1 VERBOSE=0
CIPHER=TLS_AES_128_GCM_SHA256
SET_REPS= SET_REQS= SET_BIGREQS=
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) QUICK=1 ;;
    --strata) STRATA=$2; shift ;;
    --nghttpd) NGHTTPD=$2; shift ;;
    --reps) SET_REPS=$2; shift ;;
    --requests) SET_REQS=$2; shift ;;
    --big-requests) SET_BIGREQS=$2; shift ;;
    --cipher) CIPHER=$2; shift ;;
    --no-pin) PIN=0 ;;
    --verbose) VERBOSE=1 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
    esac
    shift
done
if [ $QUICK = 1 ]; then
    REPS=1 REQS=2000 BIGREQS=20
fi
REPS=${SET_REPS:-$REPS} REQS=${SET_REQS:-$REQS} BIGREQS=${SET_BIGREQS:-$BIGREQS}

HERE=$(cd "$(dirname "$0")" && pwd)
STRATA=${STRATA:-$HERE/../../build/strata}
if [ ! -x "$STRATA" ]; then
    echo "bench_web: $STRATA not found (build the target strata_cli, or" \
         "pass --strata PATH)" >&2
    exit 1
fi
NGHTTPD=${NGHTTPD:-$(command -v nghttpd)}
for t in h2load curl openssl "$NGHTTPD"; do
    if [ -z "$t" ] || ! command -v "$t" >/dev/null 2>&1; then
        echo "bench_web: skipped: ${t:-nghttpd} not found (Debian:" \
             "apt-get install nghttp2-client nghttp2-server curl openssl;" \
             "scripts/deps.sh does)"
        exit 77
    fi
done
if ! "$STRATA" --help 2>&1 | grep -q -- '--root'; then
    echo "bench_web: skipped: this strata has no web mode (--root)"
    exit 77
fi

# ---- placement (as bench/h2/run.sh) ---------------------------------------

CPUS=()
if [ $PIN = 1 ] && command -v taskset >/dev/null 2>&1; then
    list=$(taskset -cp $$ 2>/dev/null | sed 's/.*: //')
    for part in ${list//,/ }; do
        if [[ $part == *-* ]]; then
            for ((c = ${part%-*}; c <= ${part#*-}; c++)); do CPUS+=("$c"); done
        else
            CPUS+=("$part")
        fi
    done
fi
if [ ${#CPUS[@]} -ge 2 ]; then
    PIN_C=(taskset -c "${CPUS[0]}") PIN_S=(taskset -c "${CPUS[1]}")
    PLACE="h2load on cpu ${CPUS[0]}, servers on cpu ${CPUS[1]}"
else
    PIN_C=() PIN_S=()
    PLACE="not pinned"
fi

# ---- the servers ------------------------------------------------------------

bench_tmp
CERTS=$TMP/certs WWW=$TMP/www
if ! bash "$HERE/../../tests/certs/make_certs.sh" "$CERTS" >/dev/null; then
    echo "bench_web: cannot make the certificates (tests/certs/make_certs.sh)" >&2
    exit 1
fi
mkdir -p "$WWW"
SMALL=1024 BIG=1048576
head -c $SMALL /dev/urandom >"$WWW/small.bin"
head -c $BIG /dev/urandom >"$WWW/big.bin"

# start_on_free_port appends the port; exec keeps the pid the server's.
strata_on() {
    # shellcheck disable=SC2317 # run by start_on_free_port
    exec "${PIN_S[@]}" "$STRATA" listen "wss://127.0.0.1:$1" \
        --cert "$CERTS/server.pem" --key "$CERTS/server.key" --root "$WWW" --echo
}
nghttpd_on() {
    # shellcheck disable=SC2317 # run by start_on_free_port
    exec "${PIN_S[@]}" "$NGHTTPD" -n 1 -d "$WWW" "$1" \
        "$CERTS/server.key" "$CERTS/server.pem"
}
start_on_free_port strata "$TMP/strata.err" strata_on
S_PID=$SRV_PID S_PORT=$SRV_PORT
start_on_free_port nghttpd "$TMP/nghttpd.err" nghttpd_on
N_PID=$SRV_PID N_PORT=$SRV_PORT
S_RSS0=$(rss_kib "$S_PID") N_RSS0=$(rss_kib "$N_PID")

hwm_kib() {
    awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0
}

# What a failure report needs: the command, h2load's (or curl's) words,
# what each server said on stderr, whether it is still there.
show_failure() { # command output_file
    local s
    echo "  command: $1"
    grep -v '^progress:' "$2" | sed 's/^/  output: /' | tail -20
    for s in strata nghttpd; do
        if [ -s "$TMP/$s.err" ]; then
            sed "s/^/  $s stderr: /" "$TMP/$s.err" | tail -10
        fi
    done
    kill -0 "$S_PID" 2>/dev/null || echo "  strata (pid $S_PID) is gone"
    kill -0 "$N_PID" 2>/dev/null || echo "  nghttpd (pid $N_PID) is gone"
}

# ---- the run ------------------------------------------------------------------

SUMMARY=
echo "bench_web: strata listen --root against nghttpd, TLS ($(h2load --version | head -1))"
echo "load average $(cut -d' ' -f1-3 /proc/loadavg); $PLACE"
echo "$REPS reps per row, interleaved; medians (and the range over the reps)"
WOLF=$(ldd "$STRATA" 2>/dev/null | awk '/libwolfssl/ { print $3 }')
echo "strata: $STRATA (${WOLF:-no libwolfssl});" \
     "nghttpd: $NGHTTPD ($("$NGHTTPD" --version 2>/dev/null | head -1)," \
     "$(ldd "$NGHTTPD" 2>/dev/null | awk '/libssl/ { print $3 }'))"
# Whether that wolfSSL has AES-NI: its options.h, beside it (a private
# build, bench/tls/run_aesni.sh) or the system's headers.
OPTS_H=$(dirname "${WOLF:-.}")/../include/wolfssl/options.h
[ -f "$OPTS_H" ] ||
    OPTS_H=$(pkg-config --variable=includedir wolfssl 2>/dev/null)/wolfssl/options.h
if [ -n "$WOLF" ] && [ -f "$OPTS_H" ]; then
    if grep -q '^#define WOLFSSL_AESNI' "$OPTS_H"; then
        echo "strata's wolfSSL: AES-NI compiled in ($OPTS_H)"
    else
        echo "strata's wolfSSL: no AES-NI, AES-GCM in C ($OPTS_H);" \
             "OpenSSL (nghttpd, h2load) uses AES-NI"
    fi
fi

S_URL=https://127.0.0.1:$S_PORT N_URL=https://127.0.0.1:$N_PORT

# Before timing: the bytes themselves, from every server, both ways.
check_bytes() {
    local way url f out
    for way in "--http2 $S_URL" "--http1.1 $S_URL" "--http2 $N_URL"; do
        for f in small.bin big.bin; do
            out=$TMP/check.$f url="${way#* }/$f"
            if ! curl -sS --max-time 30 --cacert "$CERTS/ca.pem" -o "$out" \
                    -w '%{http_version} %{http_code}\n' "${way% *}" "$url" \
                    >"$TMP/check.out" 2>&1 ||
               ! cmp -s "$out" "$WWW/$f"; then
                fail "curl ${way% *} $url: $(wc -c <"$out" 2>/dev/null) bytes," \
                     "$(cmp "$out" "$WWW/$f" 2>&1)"
                show_failure "curl ${way% *} $url" "$TMP/check.out"
            fi
        done
    done
}
check_bytes

TLS_OPTS=(--tls13-ciphers="$CIPHER" --groups=P-256)
echo "h2load offers TLS 1.3 $CIPHER, group P-256; -N 10: a connection idle for 10 s fails its requests"

# One measurement: h2load (timeout as a last guard) against server PID
# with the row's options; h2load_measure's H_* figures.
h2load_run() { # server_pid n row_options...
    local pid=$1 n=$2
    shift 2
    h2load_measure "$pid" "${PIN_C[@]}" timeout 300 h2load "${TLS_OPTS[@]}" \
        -N 10 -t 1 -n "$n" "$@"
}

# Every row REPS times, interleaved, after an untimed warm-up each (which
# prints what TLS and ALPN agreed on). Rows come from the caller's arrays
# labels, pids, opts (h2load options and the url, one string, split on
# spaces) and protos (the ALPN each must agree on); every answer must be
# 2xx with BYTES body bytes. Sets the caller's med (RATE: req/s or MB/s)
# and us (the server's cpu microseconds per answer) and prints the table.
# (lib_bench.sh's h2load_rows has -c 8 -m 16 and one protocol for every
# row; these rows differ in both.)
# shellcheck disable=SC2154,SC2086 # the caller's arrays; lists of values, split
rows() { # rate (req/s or MB/s) n bytes
    local rate=$1 n=$2 bytes=$3 nrow=${#labels[@]} r k i v w f=%.1f
    local -A VAL SCPU CCPU USREQ
    [ "$rate" = req/s ] && f=%.0f
    for ((r = -1; r < REPS; r++)); do       # rep -1: the warm-up
        for ((k = 0; k < nrow; k++)); do
            i=$(((k + (r < 0 ? 0 : r)) % nrow))
            w=$n
            [ $r -lt 0 ] && w=$((n / 10 + 10))
            # shellcheck disable=SC2086 # the row's options, split
            h2load_run "${pids[i]}" $w ${opts[i]}
            if [ "$H_OK" != "$w" ] || [ "$H_DATA" != $((bytes * w)) ] ||
               ! grep -q "^Application protocol: ${protos[i]}\$" "$TMP/h2load.out"; then
                fail "${labels[i]}: $H_OK of $w requests answered 2xx, $H_DATA" \
                     "body bytes (want $((bytes * w))), ALPN" \
                     "$(awk '/^Application protocol:/ { print $3 }' "$TMP/h2load.out") (want ${protos[i]})"
                show_failure "h2load ${TLS_OPTS[*]} -N 10 -t 1 -n $w ${opts[i]}" "$TMP/h2load.out"
                continue
            fi
            if [ $r -lt 0 ]; then
                echo "  ${labels[i]}: $(grep -E '^(TLS Protocol|Cipher|Server Temp Key|Application protocol):' \
                    "$TMP/h2load.out" | sed 's/^[^:]*: //' | paste -sd ' ')"
                continue
            fi
            if [ "$rate" = req/s ]; then
                v=$H_RATE
            else
                v=$(awk -v b="$H_DATA" -v t="$H_SECS" 'BEGIN { printf "%.1f", (t > 0 ? b / t / 1e6 : 0) }')
            fi
            VAL[$i]+="$v "
            SCPU[$i]+="$(pct "$H_SCPU" "$H_SECS") "
            CCPU[$i]+="$(pct "$H_CPU" "$H_SECS") "
            USREQ[$i]+="$(awk -v c="$H_SCPU" -v n="$w" 'BEGIN { printf "%.1f", 1e6 * c / n }') "
            if [ $VERBOSE = 1 ]; then
                echo "  rep $r ${labels[i]}: $v $rate, server cpu $H_SCPU s, h2load cpu $H_CPU s, $H_SECS s"
            fi
        done
    done
    echo "| server | $rate | range | server cpu | h2load cpu | server us/answer |"
    echo "|---|---|---|---|---|---|"
    for ((i = 0; i < nrow; i++)); do
        med[i]=$(median ${VAL[$i]:-0})
        us[i]=$(median ${USREQ[$i]:-0})
        printf "| %s | $f | %s | %s%% | %s%% | %.1f |\n" "${labels[i]}" "${med[i]}" \
            "$(range "$f" ${VAL[$i]:-0})" "$(median ${SCPU[$i]:-0})" \
            "$(median ${CCPU[$i]:-0})" "${us[i]}"
    done
    echo "(cpu: share of the wall time, from /proc in 10 ms ticks; us/answer: the server's cpu per answer)"
}

phase_small() {
    local labels=("nghttpd, h2" "strata, h2" "strata, HTTP/1.1 pipelined 10 deep"
                  "strata, HTTP/1.1 not pipelined (-m 1)")
    local pids=("$N_PID" "$S_PID" "$S_PID" "$S_PID")
    local opts=("-c 10 -m 10 $N_URL/small.bin" "-c 10 -m 10 $S_URL/small.bin"
                "--h1 -c 10 -m 10 $S_URL/small.bin" "--h1 -c 10 -m 1 $S_URL/small.bin")
    local protos=(h2 h2 http/1.1 http/1.1)
    local med=() us=() r1 r2 r3
    echo
    echo "== 1. a $SMALL-byte file: h2load -n $REQS -c 10 -m 10 -t 1 (HTTP/1.1: --h1, nghttpd has none)"
    rows req/s "$REQS" $SMALL
    r1=$(ratio "${med[1]}" "${med[0]}") r2=$(ratio "${us[0]}" "${us[1]}")
    r3=$(ratio "${med[2]}" "${med[1]}")
    echo "strata / nghttpd req/s: $r1; cpu view, nghttpd us / strata us: $r2"
    echo "strata HTTP/1.1 / strata h2 req/s: $r3 (pipelined), $(ratio "${med[3]}" "${med[1]}") (not pipelined)"
    SUMMARY+="small file strata/nghttpd $r1 (cpu view $r2), strata h1/h2 $r3; "
    S_HWM1=$(hwm_kib "$S_PID") N_HWM1=$(hwm_kib "$N_PID")
}

phase_big() {
    local labels=("nghttpd, h2" "strata, h2")
    local pids=("$N_PID" "$S_PID")
    local opts=("-c 4 -m 1 $N_URL/big.bin" "-c 4 -m 1 $S_URL/big.bin")
    local protos=(h2 h2)
    local med=() us=() r1 r2
    echo
    echo "== 2. a $BIG-byte file: h2load -n $BIGREQS -c 4 -m 1 -t 1"
    rows MB/s "$BIGREQS" $BIG
    r1=$(ratio "${med[1]}" "${med[0]}") r2=$(ratio "${us[0]}" "${us[1]}")
    echo "strata / nghttpd MB/s: $r1; cpu view, nghttpd us / strata us: $r2"
    SUMMARY+="large file strata/nghttpd $r1 (cpu view $r2)"
}

phase_small
phase_big

echo
echo "== 3. resident memory (KiB, /proc: VmRSS at start, VmHWM peaks)"
echo "| server | at start | peak after phase 1 | peak at the end |"
echo "|---|---|---|---|"
# VmHWM is updated lazily (it can read lower later): the larger reading.
peak() { # pid earlier_reading
    local now
    now=$(hwm_kib "$1")
    echo $((now > ${2:-0} ? now : ${2:-0}))
}
echo "| nghttpd | $N_RSS0 | ${N_HWM1:-0} | $(peak "$N_PID" "${N_HWM1:-0}") |"
echo "| strata | $S_RSS0 | ${S_HWM1:-0} | $(peak "$S_PID" "${S_HWM1:-0}") |"
kill -0 "$S_PID" 2>/dev/null || fail "strata exited during the run: $(tail -3 "$TMP/strata.err")"
kill -0 "$N_PID" 2>/dev/null || fail "nghttpd exited during the run: $(tail -3 "$TMP/nghttpd.err")"

echo
echo "summary: $SUMMARY"
exit "$FAILED"
