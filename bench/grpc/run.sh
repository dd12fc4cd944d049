#!/usr/bin/env bash
# bench/grpc/run.sh: strata's gRPC server and client against the C++ gRPC
# server, in one run (see bench/README.md, "gRPC").
#
#  1. Unary Echo calls/s under h2load (-n N -c 8 -m 16 -t 1, gRPC-framed
#     POSTs of one 12-byte Msg): strata's server (bench_grpc_server) vs the
#     C++ server (cpp_server.cc, callback API; the sync API as a variant
#     row), alternately, R times: medians, strata / C++. Goal: >= 5.
#  3. In the same rotation and with the same load, strata's plain HTTP/2
#     echo (examples/h2_echo_server: the POST body back, 17 bytes as the
#     gRPC answer's): gRPC / h2. Goal: within 30% (>= 0.7).
#  2. Unary Echo calls/s with strata's own client (bench_grpc_client
#     unary: 8 connections x 16 calls in flight) against both servers:
#     strata / C++.
#  4. Server streaming: one Stream call, COUNT messages of 1 KiB, received
#     by strata's client (the same client for both servers, so the ratio is
#     about the servers), with strata's default receive window (64 KiB per
#     stream) and with 1 MiB: messages/s, strata / C++. Goal: >= 10.
#  5. Memory: a fresh server per measurement; strata's client opens idle
#     connections (no call) and idle calls (request head sent, no message)
#     and holds them; the server's RSS (and for strata the malloc'd bytes)
#     before and after, divided.
# Every process shares the machine's cpus with the others (nothing is
# pinned); each server's cpu time comes from /proc/PID/stat.
# Before timing, one call per server is checked with curl: the answer's
# bytes and grpc-status 0 in its trailers.
# Exit status: 0 whatever the goals say, 1 when a measurement failed, 77
# (skipped) when h2load is missing. Without g++ or gRPC C++ the C++ rows
# are skipped with the reason.
set -u
# shellcheck source=bench/lib_bench.sh
. "$(dirname "$0")/../lib_bench.sh" bench_grpc

usage() {
    cat <<'EOF'
usage: bench/grpc/run.sh [--quick] [--reps R] [--requests N] [--secs S]
                         [--count M] [--only unary|client|stream|memory]
                         [--bin DIR] [--h2-echo PATH] [--cpp-dir DIR]
                         [--no-cpp] [--no-variants] [--verbose]
  --quick        smoke run: 1 rep, tiny counts (proves every phase runs)
  --reps R       measurements per row (default 5)
  --requests N   h2load requests per measurement (200000)
  --secs S       each strata-client unary measurement (2)
  --count M      messages per streaming measurement (200000)
  --only PHASE   one phase: unary (1 and 3), client (2), stream (4),
                 memory (5)
  --bin DIR      where bench_grpc_server and bench_grpc_client are
                 (default build/bench/grpc under the source tree)
  --h2-echo PATH examples' h2_echo_server (default DIR/../../h2_echo_server)
  --cpp-dir DIR  build the C++ server there and keep it (default: a
                 temporary folder, rebuilt every run)
  --no-cpp       strata's rows only
  --no-variants  no C++ sync-API row
  --verbose      every measurement, not only the medians
EOF
}

QUICK=0 REPS=5 REQS=200000 SECS=2 COUNT=200000 ONLY= BIN= H2ECHO= CPP_DIR=
CPP=1 VARIANTS=1 VERBOSE=0
SET_REPS= SET_REQS= SET_SECS= SET_COUNT=
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) QUICK=1 ;;
    --reps) SET_REPS=$2; shift ;;
    --requests) SET_REQS=$2; shift ;;
    --secs) SET_SECS=$2; shift ;;
    --count) SET_COUNT=$2; shift ;;
    --only) ONLY=$2; shift ;;
    --bin) BIN=$2; shift ;;
    --h2-echo) H2ECHO=$2; shift ;;
    --cpp-dir) CPP_DIR=$2; shift ;;
    --no-cpp) CPP=0 ;;
    --no-variants) VARIANTS=0 ;;
    --verbose) VERBOSE=1 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
    esac
    shift
done
IDLE_CONNS=500 IDLE_CALL_CONNS=10 IDLE_CALLS=100
if [ $QUICK = 1 ]; then
    REPS=1 REQS=5000 SECS=0.2 COUNT=2000
    IDLE_CONNS=20 IDLE_CALL_CONNS=2 IDLE_CALLS=20
fi
REPS=${SET_REPS:-$REPS} REQS=${SET_REQS:-$REQS} SECS=${SET_SECS:-$SECS}
COUNT=${SET_COUNT:-$COUNT}

HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${BIN:-$HERE/../../build/bench/grpc}
SERVER=$BIN/bench_grpc_server
CLIENT=$BIN/bench_grpc_client
H2ECHO=${H2ECHO:-$BIN/../../h2_echo_server}
need_executables "$SERVER" "$CLIENT"
if ! command -v h2load >/dev/null 2>&1; then
    echo "bench_grpc: skipped: h2load not found (Debian: apt-get install" \
         "nghttp2-client; scripts/deps.sh does)"
    exit 77
fi
[ -x "$H2ECHO" ] || { echo "bench_grpc: no h2_echo_server at $H2ECHO: the h2 row is skipped"; H2ECHO=; }

# ---- processes and clean-up ----------------------------------------------

bench_tmp

# Wait until FILE has a line; the server's "port=P ..." line.
wait_port_line() { # file pid
    for _ in $(seq 200); do
        [ -s "$1" ] && break
        kill -0 "$2" 2>/dev/null || break
        sleep 0.05
    done
    sed -n 's/^port=\([0-9]*\).*/\1/p' "$1"
}

# Start strata's gRPC server; sets SRV_PID, SRV_PORT, BUILD.
start_strata() { # [stats file]
    local out=$TMP/strata.$RANDOM
    if [ $# -gt 0 ]; then
        "$SERVER" --stats "$1" >"$out" 2>>"$TMP/server.err" &
    else
        "$SERVER" >"$out" 2>>"$TMP/server.err" &
    fi
    SRV_PID=$!
    PIDS+=("$SRV_PID")
    SRV_PORT=$(wait_port_line "$out" $SRV_PID)
    [ -n "$SRV_PORT" ] || { echo "bench_grpc: strata's server did not start"; exit 1; }
    BUILD=$(sed -n 's/.*build=\([^ ]*\).*/\1/p' "$out")
}

# Start the C++ server; sets SRV_PID, SRV_PORT.
start_cpp() { # sync|callback
    local out=$TMP/cpp.$RANDOM
    "$CPP_BIN" --api "$1" >"$out" 2>>"$TMP/cpp.err" &
    SRV_PID=$!
    PIDS+=("$SRV_PID")
    SRV_PORT=$(wait_port_line "$out" $SRV_PID)
    [ -n "$SRV_PORT" ] || { echo "bench_grpc: the C++ server did not start: $(tail -1 "$TMP/cpp.err")"; exit 1; }
}

# h2_echo_server takes its port as an argument; sets SRV_PID, SRV_PORT.
start_h2echo() {
    start_on_free_port h2_echo_server "$TMP/h2echo.err" "$H2ECHO"
}

stop_server() { # pid
    kill "$1" 2>/dev/null
    wait "$1" 2>/dev/null
}

# ---- the C++ server, built now ------------------------------------------

CPP_BIN= CPP_WHY=
build_cpp() {
    local dir=${CPP_DIR:-$TMP/cpp_server} plugin
    CPP_BIN=$dir/cpp_server
    if [ -x "$CPP_BIN" ] && [ "$CPP_BIN" -nt "$HERE/cpp_server.cc" ] \
       && [ "$CPP_BIN" -nt "$HERE/bench.proto" ]; then
        return 0
    fi
    for t in g++ protoc pkg-config; do
        command -v $t >/dev/null 2>&1 || { CPP_WHY="$t not found"; return 1; }
    done
    plugin=$(command -v grpc_cpp_plugin) || { CPP_WHY="grpc_cpp_plugin not found (Debian: protobuf-compiler-grpc)"; return 1; }
    pkg-config --exists grpc++ protobuf || { CPP_WHY="pkg-config finds no grpc++ (Debian: libgrpc++-dev)"; return 1; }
    mkdir -p "$dir"
    echo "building the C++ server (g++ -O2, gRPC C++ $(pkg-config --modversion grpc++)) ..."
    if ! protoc -I"$HERE" --cpp_out="$dir" --grpc_out="$dir" \
            --plugin=protoc-gen-grpc="$plugin" "$HERE/bench.proto" \
            2>"$dir/build.log" \
       || ! g++ -O2 -std=c++17 -o "$CPP_BIN.tmp" -I"$dir" "$HERE/cpp_server.cc" \
            "$dir/bench.pb.cc" "$dir/bench.grpc.pb.cc" \
            $(pkg-config --cflags --libs grpc++ protobuf) 2>>"$dir/build.log"; then
        CPP_WHY="the build failed: $(tail -1 "$dir/build.log")"
        return 1
    fi
    mv "$CPP_BIN.tmp" "$CPP_BIN"
}

# ---- checks before timing -----------------------------------------------------

# The request every h2load POST carries: a 5-byte gRPC prefix and a Msg
# whose data is the 10 bytes "hello gRPC" (as the strata client's).
REQ=$TMP/echo.req
printf '\000\000\000\000\014\012\012hello gRPC' >"$REQ"
REQ_LEN=17

# One Echo call with curl: the same 17 bytes back and grpc-status 0.
check_grpc() { # label port
    local hdr=$TMP/check.hdr body=$TMP/check.body
    if ! command -v curl >/dev/null 2>&1; then
        echo "  ($1: not checked, no curl)"
        return 0
    fi
    curl -s --http2-prior-knowledge -H 'content-type: application/grpc' \
         -H 'te: trailers' --data-binary @"$REQ" -D "$hdr" -o "$body" \
         "http://127.0.0.1:$2/bench.Bench/Echo"
    if ! cmp -s "$REQ" "$body" || ! tr -d '\r' <"$hdr" | grep -qx 'grpc-status: 0'; then
        fail "$1: curl's Echo call did not come back with the same message and grpc-status 0"
        return 1
    fi
    echo "  $1: Echo checked with curl (same message back, grpc-status 0)"
}

check_h2echo() { # port
    local body=$TMP/check.body
    command -v curl >/dev/null 2>&1 || return 0
    curl -s --http2-prior-knowledge --data-binary @"$REQ" -o "$body" \
         "http://127.0.0.1:$1/bench.Bench/Echo"
    cmp -s "$REQ" "$body" || { fail "h2_echo_server: curl's POST did not come back"; return 1; }
    echo "  h2_echo_server: POST checked with curl (same body back)"
}

# One h2load run of gRPC-framed Echo POSTs: sets H_RATE, H_SECS, H_OK,
# H_DATA, H_CPU, H_SCPU (see h2load_measure).
h2load_run() { # server_pid url n connections streams
    h2load_measure "$1" h2load -n "$3" -c "$4" -m "$5" -t 1 \
        -d "$REQ" -H 'content-type: application/grpc' -H 'te: trailers' "$2"
}

# One strata-client run: sets C_OUT (its "ok ..." line), C_SCPU (the
# server's cpu seconds during it) or fails.
client_run() { # server_pid args...
    local pid=$1 c0 c1
    shift
    c0=$(proc_cpu "$pid")
    C_OUT=$("$CLIENT" "$@")
    c1=$(proc_cpu "$pid")
    C_SCPU=$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", b - a }')
    [[ $C_OUT == ok* ]]
}

field() { # line key
    awk -v k="$2" '{ for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) print kv[2] } }' <<<"$1"
}

# ---- the run ----------------------------------------------------------------

NCPU=$(nproc 2>/dev/null || echo '?')
echo "bench_grpc: strata's gRPC against the C++ gRPC server ($(h2load --version | head -1))"
echo "load average $(cut -d' ' -f1-3 /proc/loadavg); $NCPU cpus, nothing pinned:" \
     "clients and servers share them"
echo "$REPS reps per row, interleaved; medians (and the range over the reps)"

if [ $CPP = 1 ] && ! build_cpp; then
    echo "bench_grpc: the C++ rows are skipped: $CPP_WHY"
    CPP=0
fi

# names, labels, pids, ports of the servers of phases 1-4
NAMES=() LABELS=() SPIDS=() SPORTS=()
add_server() { NAMES+=("$1"); LABELS+=("$2"); SPIDS+=("$SRV_PID"); SPORTS+=("$SRV_PORT"); }

start_strata
echo "strata built as $BUILD$([ "$BUILD" = Release ] || echo ' (not Release: its figures mean little)')"
add_server strata "strata (bench_grpc_server)"
if [ $CPP = 1 ]; then
    start_cpp callback
    add_server cpp "C++ gRPC $(pkg-config --modversion grpc++ 2>/dev/null), callback API"
    if [ $VARIANTS = 1 ]; then
        start_cpp sync
        add_server cppsync "C++ gRPC, sync API"
    fi
fi
echo "checks:"
for ((i = 0; i < ${#NAMES[@]}; i++)); do
    check_grpc "${LABELS[i]}" "${SPORTS[i]}"
done
H2_PID= H2_PORT=
if [ -n "$H2ECHO" ]; then
    start_h2echo
    H2_PID=$SRV_PID H2_PORT=$SRV_PORT
    check_h2echo "$H2_PORT"
fi
[ $FAILED = 0 ] || exit 1

# index of a server by name, -1 if absent
idx() {
    local i
    for ((i = 0; i < ${#NAMES[@]}; i++)); do
        [ "${NAMES[i]}" = "$1" ] && { echo $i; return; }
    done
    echo -1
}

# ---- 1 and 3. unary calls under h2load -------------------------------------------

U_RATIO=- H2_RATIO=-
phase_unary() {
    local names=("${NAMES[@]}") labels=("${LABELS[@]}") pids=("${SPIDS[@]}") urls=() i
    for ((i = 0; i < ${#names[@]}; i++)); do
        urls[i]="http://127.0.0.1:${SPORTS[i]}/bench.Bench/Echo"
    done
    if [ -n "$H2_PID" ]; then
        names+=(h2) labels+=("strata plain HTTP/2 echo (h2_echo_server)")
        pids+=("$H2_PID") urls+=("http://127.0.0.1:$H2_PORT/bench.Bench/Echo")
    fi
    local n=${#names[@]} med=() us=()
    echo
    echo "== 1. unary Echo under h2load -n $REQS -c 8 -m 16 -t 1 (gRPC-framed POSTs," \
         "a $REQ_LEN-byte body each way)"
    h2load_rows calls/s us/call "$REQ_LEN"
    echo "(cpu: share of the wall time, all threads, from /proc in 10 ms ticks;" \
         "us/call: the server's cpu per call; h2load checked: every answer 2xx" \
         "with $REQ_LEN body bytes)"
    local s c h
    s=$(idx strata) c=$(idx cpp) h=$((n - 1))
    if [ "$c" -ge 0 ]; then
        U_RATIO=$(ratio "${med[s]}" "${med[c]}")
        echo "1. strata / C++: $U_RATIO (goal >= 5: $(verdict "$U_RATIO" 5));" \
             "cpu view, C++ us/call / strata us/call: $(ratio "${us[c]}" "${us[s]}")"
        local y
        y=$(idx cppsync)
        [ "$y" -ge 0 ] && echo "   strata / C++ sync API: $(ratio "${med[s]}" "${med[y]}")"
    fi
    if [ -n "$H2_PID" ]; then
        H2_RATIO=$(ratio "${med[s]}" "${med[h]}")
        echo "3. strata gRPC / strata plain HTTP/2: $H2_RATIO (goal: within 30%," \
             ">= 0.7: $(verdict "$H2_RATIO" 0.7)); cpu view, h2 us/call / gRPC" \
             "us/call: $(ratio "${us[h]}" "${us[s]}")"
    fi
}

# ---- 2. unary calls, strata's client ------------------------------------------------

C_RATIO=-
phase_client() {
    local n=${#NAMES[@]} i k r calls secs cpu
    declare -A RATE SCPU CCPU
    echo
    echo "== 2. unary Echo with strata's client (bench_grpc_client unary:" \
         "8 connections x 16 calls in flight, $SECS s)"
    for ((r = 0; r < REPS; r++)); do
        for ((k = 0; k < n; k++)); do
            i=$(((k + r) % n))
            if ! client_run "${SPIDS[i]}" unary "${SPORTS[i]}" 8 16 "$SECS"; then
                fail "${LABELS[i]}: $C_OUT"
                continue
            fi
            calls=$(field "$C_OUT" calls) secs=$(field "$C_OUT" secs) cpu=$(field "$C_OUT" cpu)
            RATE[$i]+="$(awk -v c="$calls" -v t="$secs" 'BEGIN { printf "%.0f", c / t }') "
            SCPU[$i]+="$(pct "$C_SCPU" "$secs") "
            CCPU[$i]+="$(pct "$cpu" "$secs") "
            [ $VERBOSE = 1 ] && echo "  rep $r ${NAMES[i]}: $C_OUT, server cpu $C_SCPU s"
        done
    done
    echo "| server | calls/s | range | server cpu | client cpu |"
    echo "|---|---|---|---|---|"
    local med=()
    for ((i = 0; i < n; i++)); do
        med[i]=$(median ${RATE[$i]:-0})
        printf '| %s | %.0f | %s | %s%% | %s%% |\n' "${LABELS[i]}" "${med[i]}" \
            "$(range %.0f ${RATE[$i]:-0})" "$(median ${SCPU[$i]:-0})" \
            "$(median ${CCPU[$i]:-0})"
    done
    local c
    c=$(idx cpp)
    if [ "$c" -ge 0 ]; then
        C_RATIO=$(ratio "${med[0]}" "${med[c]}")
        echo "2. strata / C++: $C_RATIO (the client timed both; its cpu" \
             "counts in the wall time of each)"
    fi
}

# ---- 4. server streaming -----------------------------------------------------------

S_RATIO=- S_RATIO_W=-
phase_stream() {
    local n=${#NAMES[@]} windows=(0 1048576) wlabels=("64 KiB (strata's default)" "1 MiB")
    local i k r w msgs secs cpu
    declare -A RATE SCPU CCPU
    echo
    echo "== 4. server streaming: one Stream call, $COUNT messages of 1 KiB," \
         "received by strata's client (bench_grpc_client stream) for every server"
    for ((r = 0; r < REPS; r++)); do
        for ((w = 0; w < 2; w++)); do
            for ((k = 0; k < n; k++)); do
                i=$(((k + r) % n))
                if ! client_run "${SPIDS[i]}" stream "${SPORTS[i]}" "$COUNT" 1024 1 "${windows[w]}"; then
                    fail "${LABELS[i]}, window ${wlabels[w]}: $C_OUT"
                    continue
                fi
                msgs=$(field "$C_OUT" msgs) secs=$(field "$C_OUT" secs) cpu=$(field "$C_OUT" cpu)
                RATE[$w.$i]+="$(awk -v m="$msgs" -v t="$secs" 'BEGIN { printf "%.0f", m / t }') "
                SCPU[$w.$i]+="$(pct "$C_SCPU" "$secs") "
                CCPU[$w.$i]+="$(pct "$cpu" "$secs") "
                [ $VERBOSE = 1 ] && echo "  rep $r ${NAMES[i]} window ${windows[w]}: $C_OUT, server cpu $C_SCPU s"
            done
        done
    done
    echo "| server | client window | messages/s | range | MB/s | server cpu | client cpu |"
    echo "|---|---|---|---|---|---|---|"
    declare -A MED
    for ((w = 0; w < 2; w++)); do
        for ((i = 0; i < n; i++)); do
            MED[$w.$i]=$(median ${RATE[$w.$i]:-0})
            printf '| %s | %s | %.0f | %s | %.0f | %s%% | %s%% |\n' "${LABELS[i]}" \
                "${wlabels[w]}" "${MED[$w.$i]}" "$(range %.0f ${RATE[$w.$i]:-0})" \
                "$(awk -v m="${MED[$w.$i]}" 'BEGIN { print m * 1024 / 1e6 }')" \
                "$(median ${SCPU[$w.$i]:-0})" "$(median ${CCPU[$w.$i]:-0})"
        done
    done
    echo "(the same client receives from every server: where its cpu nears 100%" \
         "the client is the limit, and the ratio understates the servers' difference)"
    local c
    c=$(idx cpp)
    if [ "$c" -ge 0 ]; then
        S_RATIO=$(ratio "${MED[0.0]}" "${MED[0.$c]}")
        S_RATIO_W=$(ratio "${MED[1.0]}" "${MED[1.$c]}")
        echo "4. strata / C++: $S_RATIO with a 64 KiB window, $S_RATIO_W with 1 MiB" \
             "(goal >= 10: $(verdict "$S_RATIO" 10), $(verdict "$S_RATIO_W" 10))"
    fi
}

# ---- 5. memory -----------------------------------------------------------------------

# Idle connections or calls against a fresh server: prints "RSS_KiB HEAP"
# deltas (HEAP: strata's malloc'd bytes, - for the C++ server).
MEM_OUT=
mem_measure() { # strata|cpp conns calls
    local kind=$1 conns=$2 calls=$3 stats=$TMP/stats pid port rss0 rss1 h0=- h1=- cl out=$TMP/idle.out
    rm -f "$stats"
    if [ "$kind" = strata ]; then start_strata "$stats"; else start_cpp callback; fi
    pid=$SRV_PID port=$SRV_PORT
    # warm: one connection and a few calls first, so the first allocations
    # of the process (pools, tables) are not counted as the idle ones'
    if ! client_run "$pid" unary "$port" 1 4 0.05; then
        fail "memory ($kind): warm-up: $C_OUT"
        stop_server "$pid"
        return 1
    fi
    sleep 0.3
    rss0=$(rss_kib "$pid")
    [ "$kind" = strata ] && h0=$(sed -n 's/.*heap=\([0-9]*\).*/\1/p' "$stats")
    "$CLIENT" idle "$port" "$conns" "$calls" 60 >"$out" &
    cl=$!
    local ok=0 last=-1 now
    for _ in $(seq 200); do
        sleep 0.1
        grep -q '^ready' "$out" 2>/dev/null || continue
        if [ "$kind" = strata ]; then
            awk -v c="$conns" -v k="$((conns * calls))" '{ split($1, a, "="); split($2, b, "=") }
                END { exit !(a[2] >= c && b[2] >= k) }' "$stats" 2>/dev/null && { ok=1; break; }
        else
            # no count to read from the C++ server: wait until its RSS holds
            now=$(rss_kib "$pid")
            [ "$now" = "$last" ] && { ok=1; break; }
            last=$now
            sleep 0.2
        fi
    done
    sleep 0.2
    rss1=$(rss_kib "$pid")
    [ "$kind" = strata ] && h1=$(sed -n 's/.*heap=\([0-9]*\).*/\1/p' "$stats")
    kill $cl 2>/dev/null
    wait $cl 2>/dev/null
    stop_server "$pid"
    if [ $ok = 0 ]; then
        fail "memory ($kind): $conns connections x $calls calls did not all open ($(cat "$out"; cat "$stats" 2>/dev/null))"
        return 1
    fi
    MEM_OUT="$((rss1 - rss0)) $([ "$h0" = - ] && echo - || echo $((h1 - h0)))"
}

phase_memory() {
    local kinds=(strata) k rss heap pc_rss pc_heap
    [ $CPP = 1 ] && kinds+=(cpp)
    local calls=$((IDLE_CALL_CONNS * IDLE_CALLS))
    echo
    echo "== 5. memory of idle connections ($IDLE_CONNS, no call) and idle calls" \
         "($IDLE_CALL_CONNS connections x $IDLE_CALLS Echo calls whose request" \
         "head went, no message), a fresh server each"
    echo "| server | per idle connection: RSS | malloc'd | per idle call: RSS | malloc'd |"
    echo "|---|---|---|---|---|"
    for k in "${kinds[@]}"; do
        mem_measure "$k" "$IDLE_CONNS" 0 || continue
        read -r rss heap <<<"$MEM_OUT"
        pc_rss=$(awk -v d="$rss" -v n="$IDLE_CONNS" 'BEGIN { printf "%.1f", d / n }')
        pc_heap=$([ "$heap" = - ] && echo - || awk -v d="$heap" -v n="$IDLE_CONNS" 'BEGIN { printf "%.1f", d / n / 1024 }')
        mem_measure "$k" "$IDLE_CALL_CONNS" "$IDLE_CALLS" || continue
        read -r rss heap <<<"$MEM_OUT"
        # the calls' connections are charged at the per-connection figure
        local cr ch
        cr=$(awk -v d="$rss" -v c="$IDLE_CALL_CONNS" -v p="$pc_rss" -v n="$calls" \
             'BEGIN { printf "%.2f", (d - c * p) / n }')
        ch=$([ "$heap" = - ] && echo - || awk -v d="$heap" -v c="$IDLE_CALL_CONNS" -v p="$pc_heap" -v n="$calls" \
             'BEGIN { printf "%.2f", (d / 1024 - c * p) / n }')
        printf '| %s | %s KiB | %s | %s KiB | %s |\n' \
            "$([ "$k" = strata ] && echo strata || echo "C++ gRPC, callback API")" \
            "$pc_rss" "$([ "$pc_heap" = - ] && echo - || echo "$pc_heap KiB")" \
            "$cr" "$([ "$ch" = - ] && echo - || echo "$ch KiB")"
    done
    echo "(RSS: the server's VmRSS after minus before; malloc'd: strata's" \
         "server reports mallinfo2, the whole process's heap, nghttp2 included;" \
         "the calls' row takes off their connections at the per-connection figure)"
}

[ -z "$ONLY" ] || [ "$ONLY" = unary ] && phase_unary
[ -z "$ONLY" ] || [ "$ONLY" = client ] && phase_client
[ -z "$ONLY" ] || [ "$ONLY" = stream ] && phase_stream
[ -z "$ONLY" ] || [ "$ONLY" = memory ] && phase_memory

echo
echo "summary: unary under h2load strata/C++ $U_RATIO (goal >= 5), gRPC/plain" \
     "HTTP/2 $H2_RATIO (>= 0.7), strata's client strata/C++ $C_RATIO," \
     "streaming strata/C++ $S_RATIO / $S_RATIO_W (64 KiB / 1 MiB window; >= 10)"
for f in server cpp; do   # h2_echo_server logs h2load's abrupt ends
    if [ -s "$TMP/$f.err" ]; then
        echo "$f said:"
        sort "$TMP/$f.err" | uniq -c | sort -rn | head -5
    fi
done
exit $FAILED
