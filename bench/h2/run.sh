#!/usr/bin/env bash
# bench/h2/run.sh: strata's HTTP/2 against nghttpd and raw loopback TCP, in
# one run (see bench/README.md, "HTTP/2").
#
#  1. Small GETs: h2load -n N -c 8 -m 16 -t 1 against nghttpd (--no-tls,
#     serving a 13-byte file) and against bench_h2_server (the same 13
#     bytes on the same path), alternately, R times: req/s medians and
#     strata / nghttpd. Goal: >= 1.2.
#  2. One large body (100 MiB; --quick 8 MiB) downloaded with h2load -n 1
#     -c 1 from bench_h2_server, against the same bytes over raw loopback
#     TCP (bench_h2_client raw: a blocking write() / read() pair, 64 KiB
#     pieces), alternately: GB/s medians and strata / raw. Goal: >= 0.85.
#     For scale, the same download from nghttpd (a file) and with strata's
#     own client (bench_h2_client get).
#  3. WebSocket echo, 16 B messages, 64 in flight, strata client and server
#     both ways: over HTTP/2 (RFC 8441) and over TCP, alternately:
#     messages/s medians and h2 / tcp. Goal: >= 0.8.
# Placement (taskset): servers on the second usable cpu, h2load and the
# clients of rows 1-2 on the first; the echo clients of row 3 on the
# servers' cpu (bench_ws_echo's placement: a wake-up across this VM's
# cpus costs tens of microseconds). Every server process is started once
# and serves every rep; each measurement is a fresh connection.
# Exit status: 0 whatever the goals say, 1 when a measurement failed, 77
# (skipped) when h2load or nghttpd is missing.
set -u
# shellcheck source=bench/lib_bench.sh
. "$(dirname "$0")/../lib_bench.sh" bench_h2
RATIO_FMT=%.3f

usage() {
    cat <<'EOF'
usage: bench/h2/run.sh [--quick] [--reps R] [--requests N] [--big BYTES]
                       [--secs S] [--only get|big|ws] [--bin DIR]
                       [--no-variants] [--no-pin] [--verbose]
  --quick        smoke run: 1 rep, 20000 requests, 8 MiB, 0.2 s echoes
  --reps R       measurements per row (default 5)
  --requests N   h2load requests per small-GET measurement (400000)
  --big BYTES    the large body (104857600)
  --secs S       each echo measurement (1)
  --only PHASE   one phase: get, big or ws
  --bin DIR      where bench_h2_server and bench_h2_client are
                 (default build/bench-h2/bench under the source tree)
  --no-variants  only the rows the goals are about (no wbuf/api rows)
  --no-pin       no taskset
  --verbose      every measurement, not only the medians
EOF
}

QUICK=0 REPS=5 REQS=400000 BIG=104857600 SECS=1 ONLY= BIN= VARIANTS=1
PIN=1 VERBOSE=0
SET_REPS= SET_REQS= SET_BIG= SET_SECS=
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) QUICK=1 ;;
    --reps) SET_REPS=$2; shift ;;
    --requests) SET_REQS=$2; shift ;;
    --big) SET_BIG=$2; shift ;;
    --secs) SET_SECS=$2; shift ;;
    --only) ONLY=$2; shift ;;
    --bin) BIN=$2; shift ;;
    --no-variants) VARIANTS=0 ;;
    --no-pin) PIN=0 ;;
    --verbose) VERBOSE=1 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
    esac
    shift
done
if [ $QUICK = 1 ]; then
    REPS=1 REQS=20000 BIG=8388608 SECS=0.2
fi
REPS=${SET_REPS:-$REPS} REQS=${SET_REQS:-$REQS} BIG=${SET_BIG:-$BIG}
SECS=${SET_SECS:-$SECS}

HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${BIN:-$HERE/../../build/bench-h2/bench}
SERVER=$BIN/bench_h2_server
CLIENT=$BIN/bench_h2_client
need_executables "$SERVER" "$CLIENT"
for t in h2load nghttpd; do
    if ! command -v $t >/dev/null 2>&1; then
        echo "bench_h2: skipped: $t not found (Debian: apt-get install" \
             "nghttp2-client nghttp2-server; scripts/deps.sh does)"
        exit 77
    fi
done

# ---- placement --------------------------------------------------------

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
    C_CPU=${CPUS[0]} S_CPU=${CPUS[1]}
    PIN_C=(taskset -c "$C_CPU") PIN_S=(taskset -c "$S_CPU")
    PLACE="h2load and the download clients on cpu $C_CPU, servers on cpu $S_CPU, echo clients on cpu $S_CPU"
else
    PIN_C=() PIN_S=()
    PLACE="not pinned"
fi

# ---- processes and clean-up ----------------------------------------------

bench_tmp

# Start a strata server; sets SRV_PID, P_H2, P_WS, P_RAW.
start_strata() {
    local out=$TMP/ports.$RANDOM
    "${PIN_S[@]}" "$SERVER" "$@" >"$out" 2>>"$TMP/server.err" &
    SRV_PID=$!
    PIDS+=("$SRV_PID")
    for _ in $(seq 100); do
        [ -s "$out" ] && break
        sleep 0.05
    done
    read -r _ h2 ws raw build <"$out" || { echo "bench_h2: server did not start"; exit 1; }
    P_H2=${h2#h2=} P_WS=${ws#ws=} P_RAW=${raw#raw=} BUILD=${build#build=}
}

# nghttpd serving $TMP/www on a free port; sets NG_PID, NG_PORT.
start_nghttpd() {
    start_on_free_port nghttpd "$TMP/nghttpd.err" \
        "${PIN_S[@]}" nghttpd --no-tls -d "$TMP/www"
    NG_PID=$SRV_PID NG_PORT=$SRV_PORT
}

# ---- the run ----------------------------------------------------------------

mkdir -p "$TMP/www"
printf 'Hello, world!' >"$TMP/www/file"
echo "bench_h2: strata's HTTP/2 against nghttpd and raw TCP ($(h2load --version | head -1))"
echo "load average $(cut -d' ' -f1-3 /proc/loadavg); $PLACE"
echo "$REPS reps per row, interleaved; medians (and the range over the reps)"

start_strata
S_PID=$SRV_PID S_H2=$P_H2 S_WS=$P_WS S_RAW=$P_RAW
echo "strata built as $BUILD$([ "$BUILD" = Release ] || echo ' (not Release: its figures mean little)')"
if [ $VARIANTS = 1 ]; then
    start_strata --no-cork
    W_PID=$SRV_PID W_H2=$P_H2
fi
start_nghttpd

# One h2load run from the clients' cpu: sets H_RATE, H_SECS, H_OK, H_DATA,
# H_CPU, H_SCPU (see h2load_measure).
h2load_run() { # server_pid url n connections streams
    h2load_measure "$1" "${PIN_C[@]}" h2load -n "$3" -c "$4" -m "$5" -t 1 "$2"
}

# ---- 1. small GETs ---------------------------------------------------------

phase_get() {
    local names=(nghttpd strata) pids=($NG_PID $S_PID)
    local urls=("http://127.0.0.1:$NG_PORT/file" "http://127.0.0.1:$S_H2/file")
    local labels=("nghttpd" "strata (corked per loop callback)")
    if [ $VARIANTS = 1 ]; then
        names+=(nocork) pids+=($W_PID) urls+=("http://127.0.0.1:$W_H2/file")
        labels+=("strata, not corked (a write per stream call)")
    fi
    local med=() us=()
    echo
    echo "== 1. small GETs: h2load -n $REQS -c 8 -m 16 -t 1, a 13-byte body"
    h2load_rows req/s us/req 13
    echo "(cpu: share of the wall time, from /proc in 10 ms ticks; us/req: the server's cpu per request)"
    GET_RATIO=$(ratio "${med[1]}" "${med[0]}")
    echo "strata / nghttpd: $GET_RATIO (goal >= 1.2: $(verdict "$GET_RATIO" 1.2));" \
         "cpu view, nghttpd us/req / strata us/req: $(ratio "${us[0]}" "${us[1]}")"
    if [ $VARIANTS = 1 ]; then
        echo "strata not corked / nghttpd: $(ratio "${med[2]}" "${med[0]}")"
    fi
}

# ---- 2. one large body -------------------------------------------------------

phase_big() {
    local names=(raw strata nghttpd client) n=4 r k i
    local labels=("raw TCP (write/read, 64 KiB)" "strata server, h2load client"
                  "nghttpd, h2load client (scale)" "strata server, strata client (scale)")
    declare -A GBS
    local gb out
    head -c "$BIG" /dev/zero >"$TMP/www/big"
    echo
    echo "== 2. one large body: $BIG bytes, one connection, one stream"
    for ((r = -1; r < REPS; r++)); do   # rep -1: warm-up, untimed
        for ((k = 0; k < n; k++)); do
            i=$(((k + (r < 0 ? 0 : r)) % n))
            case ${names[i]} in
            raw|client)
                if [ "${names[i]}" = raw ]; then
                    out=$("${PIN_C[@]}" "$CLIENT" raw "$S_RAW" "$BIG")
                else
                    out=$("${PIN_C[@]}" "$CLIENT" get "$S_H2" "/bytes/$BIG")
                fi
                if [[ $out != ok* ]]; then
                    fail "${labels[i]}: $out"
                    continue
                fi
                H_SECS=$(sed 's/.*secs=\([0-9.]*\).*/\1/' <<<"$out") ;;
            strata|nghttpd)
                local url="http://127.0.0.1:$S_H2/bytes/$BIG"
                [ "${names[i]}" = nghttpd ] && url="http://127.0.0.1:$NG_PORT/big"
                h2load_run $([ "${names[i]}" = nghttpd ] && echo $NG_PID || echo $S_PID) "$url" 1 1 1
                if [ "$H_OK" != 1 ] || [ "$H_DATA" != "$BIG" ]; then
                    fail "${labels[i]}: status ${H_OK}x2xx, $H_DATA body bytes"
                    continue
                fi ;;
            esac
            [ $r -lt 0 ] && continue
            gb=$(awk -v b="$BIG" -v t="$H_SECS" 'BEGIN { printf "%.3f", (t > 0 ? b / t / 1e9 : 0) }')
            GBS[$i]+="$gb "
            [ $VERBOSE = 1 ] && echo "  rep $r ${names[i]}: $gb GB/s ($H_SECS s)"
        done
    done
    echo "| sender, receiver | GB/s | range |"
    echo "|---|---|---|"
    local med=()
    for ((i = 0; i < n; i++)); do
        med[i]=$(median ${GBS[$i]:-0})
        printf '| %s | %.3f | %s |\n' "${labels[i]}" "${med[i]}" \
            "$(range %.3f ${GBS[$i]:-0})"
    done
    BIG_RATIO=$(ratio "${med[1]}" "${med[0]}")
    echo "strata / raw TCP: $BIG_RATIO (goal >= 0.85: $(verdict "$BIG_RATIO" 0.85));" \
         "nghttpd / raw TCP: $(ratio "${med[2]}" "${med[0]}");" \
         "strata both ends / raw TCP: $(ratio "${med[3]}" "${med[0]}")"
}

# ---- 3. WebSocket echo ----------------------------------------------------------

phase_ws() {
    local names=(tcp h2) n=2 r k i out rate
    local labels=("ws -> wbuf -> socket (TCP)" "ws -> wbuf -> h2 stream (HTTP/2)")
    if [ $VARIANTS = 1 ]; then
        names+=(api) n=3
        labels+=("ws -> h2 stream (strata_ws_h2_client / _accept)")
    fi
    declare -A RATE
    echo
    echo "== 3. WebSocket echo: 16 B messages, 64 in flight, $SECS s per measurement"
    if [ $VARIANTS = 1 ]; then
        start_strata --ws-h2-api
        A_PID=$SRV_PID A_H2=$P_H2
    fi
    for ((r = 0; r < REPS; r++)); do
        for ((k = 0; k < n; k++)); do
            i=$(((k + r) % n))
            case ${names[i]} in
            tcp) out=$("${PIN_S[@]}" "$CLIENT" ws "$S_WS" 16 64 "$SECS") ;;
            h2) out=$("${PIN_S[@]}" "$CLIENT" wsh2 "$S_H2" 16 64 "$SECS") ;;
            api) out=$("${PIN_S[@]}" "$CLIENT" wsh2 "$A_H2" 16 64 "$SECS" api) ;;
            esac
            if [[ $out != ok* ]]; then
                fail "${labels[i]}: $out"
                continue
            fi
            rate=$(awk '{ for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
                          printf "%.0f", v["msgs"] / v["secs"] }' <<<"$out")
            RATE[$i]+="$rate "
            [ $VERBOSE = 1 ] && echo "  rep $r ${names[i]}: $rate msg/s"
        done
    done
    echo "| stack (client and server) | msg/s | range |"
    echo "|---|---|---|"
    local med=()
    for ((i = 0; i < n; i++)); do
        med[i]=$(median ${RATE[$i]:-0})
        printf '| %s | %.0f | %s |\n' "${labels[i]}" "${med[i]}" "$(range %.0f ${RATE[$i]:-0})"
    done
    WS_RATIO=$(ratio "${med[1]}" "${med[0]}")
    echo "over HTTP/2 / over TCP: $WS_RATIO (goal >= 0.8: $(verdict "$WS_RATIO" 0.8))"
    if [ $VARIANTS = 1 ]; then
        echo "strata_ws_h2 stack / over TCP: $(ratio "${med[2]}" "${med[0]}")"
    fi
}

GET_RATIO=- BIG_RATIO=- WS_RATIO=-
[ -z "$ONLY" ] || [ "$ONLY" = get ] && phase_get
[ -z "$ONLY" ] || [ "$ONLY" = big ] && phase_big
[ -z "$ONLY" ] || [ "$ONLY" = ws ] && phase_ws

echo
echo "summary: small GETs strata/nghttpd $GET_RATIO (goal >= 1.2), large body" \
     "strata/raw $BIG_RATIO (>= 0.85), WebSocket h2/tcp $WS_RATIO (>= 0.8)"
if [ -s "$TMP/server.err" ]; then
    echo "bench_h2_server said:"
    sort "$TMP/server.err" | uniq -c | sort -rn | head -5
fi
exit $FAILED
