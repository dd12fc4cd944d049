# bench/lib_bench.sh: the shell helpers the benchmark scripts share
# (bench/h2/run.sh, bench/grpc/run.sh), kept here so that a fix to how a
# process is measured or a median taken reaches every script. Sourced, not
# run, with the script's name as the argument:
#
#     . "$(dirname "$0")/../lib_bench.sh" bench_h2
#
# The name (BENCH_NAME) prefixes the messages and names the temporary
# folder. Sourcing only defines; nothing starts until the script calls:
#
#   bench_tmp                  makes TMP ($TMPDIR/NAME.XXXXXX); at exit it
#                              kills every pid in PIDS and removes TMP
#   need_executables SERVER CLIENT
#                              exits 1 unless both programs are there
#   fail MESSAGE               a failed measurement: says so, FAILED=1
#   proc_cpu PID, rss_kib PID  cpu seconds so far and RSS (KiB), /proc
#   port_open PORT             something listens on 127.0.0.1:PORT
#   start_on_free_port LABEL ERRFILE COMMAND...
#                              runs COMMAND PORT on a free port until it
#                              listens: SRV_PID, SRV_PORT (in PIDS)
#   h2load_measure PID COMMAND...
#                              times an h2load COMMAND against server PID:
#                              H_RATE, H_SECS, H_OK, H_DATA, H_CPU, H_SCPU
#   h2load_rows RATE_UNIT CPU_UNIT BYTES
#                              the small-request phase: interleaved reps
#                              of the script's h2load_run, a table row per
#                              server
#   median, range, ratio, verdict, pct
#                              figures over the reps (ratio's format is
#                              RATIO_FMT, %.2f unless the script sets it)
# bash only (arrays, /dev/tcp); the scripts run under set -u, so is this.
# shellcheck shell=bash
# Its variables are set for the sourcing script to read:
# shellcheck disable=SC2034

BENCH_NAME=${1:?"lib_bench.sh: source it with the script's name"}
RATIO_FMT=%.2f
FAILED=0
PIDS=()
HZ=$(getconf CLK_TCK)

# ---- processes and clean-up ----------------------------------------------

# Called by the script once its arguments and tools are checked, so that
# a usage error or a skip leaves no folder behind.
bench_tmp() {
    TMP=$(mktemp -d "${TMPDIR:-/tmp}/$BENCH_NAME.XXXXXX")
    trap bench_cleanup EXIT
    trap 'exit 1' INT TERM
}

# Servers are started in the background and would outlive an early exit.
bench_cleanup() {
    local p
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null
    done
    wait 2>/dev/null
    rm -rf "$TMP"
}

need_executables() { # server client (paths; their names are the targets')
    local p
    for p in "$@"; do
        if [ ! -x "$p" ]; then
            echo "$BENCH_NAME: $p not found (build the targets $(basename "$1")" \
                 "and $(basename "$2"), or pass --bin DIR)" >&2
            exit 1
        fi
    done
}

# Goes on after a failed measurement (the other rows still say something)
# and makes the exit status 1.
fail() {
    echo "$BENCH_NAME: FAILED: $*"
    FAILED=1
}

# cpu seconds of a whole process so far (all threads), from /proc.
proc_cpu() {
    awk -v hz="$HZ" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' \
        "/proc/$1/stat" 2>/dev/null || echo 0
}
rss_kib() {
    awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0
}

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# For servers that take their port as their last argument and print
# nothing to wait for: try random free ports, 8 times.
start_on_free_port() { # label errfile command...
    local label=$1 err=$2 try port
    shift 2
    for try in 1 2 3 4 5 6 7 8; do
        port=$((20000 + (RANDOM * 7 + try) % 40000))
        port_open $port && continue
        "$@" $port >/dev/null 2>>"$err" &
        SRV_PID=$!
        for _ in $(seq 100); do
            port_open $port && break
            kill -0 $SRV_PID 2>/dev/null || break
            sleep 0.05
        done
        if kill -0 $SRV_PID 2>/dev/null && port_open $port; then
            PIDS+=("$SRV_PID")
            SRV_PORT=$port
            return 0
        fi
        kill $SRV_PID 2>/dev/null
        wait $SRV_PID 2>/dev/null
    done
    echo "$BENCH_NAME: $label did not start: $(tail -1 "$err")"
    exit 1
}

# One h2load run (COMMAND is h2load and its arguments, maybe behind
# taskset): sets H_RATE (req/s), H_SECS, H_OK (requests answered 2xx),
# H_DATA (body bytes), H_CPU (h2load's cpu seconds), H_SCPU (the server's
# cpu seconds during the run); 0 for what h2load did not say.
h2load_measure() { # server_pid command...
    local pid=$1 out=$TMP/h2load.out c0 c1 t
    shift
    c0=$(proc_cpu "$pid")
    t=$( { TIMEFORMAT='%U %S'; time "$@" >"$out" 2>&1; } 2>&1 | tail -1)
    c1=$(proc_cpu "$pid")
    H_CPU=$(awk -v t="$t" 'BEGIN { split(t, a, " "); printf "%.2f", a[1] + a[2] }')
    H_SCPU=$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", b - a }')
    H_RATE=$(awk '/^finished in/ { gsub(",", ""); print $4 }' "$out")
    H_SECS=$(awk '/^finished in/ { gsub(",", ""); v = $3;
        if (v ~ /ms$/) { sub("ms", "", v); v /= 1000 } else if (v ~ /us$/) { sub("us", "", v); v /= 1e6 } else sub("s", "", v);
        printf "%.6f", v }' "$out")
    H_OK=$(awk '/^status codes:/ { print $3 }' "$out")
    H_DATA=$(awk '/^traffic:/ { for (i = 1; i <= NF; i++) if ($i == "data") { v = $(i - 1); gsub(/[()]/, "", v); print v } }' "$out")
    [ -n "$H_RATE" ] || H_RATE=0
    [ -n "$H_OK" ] || H_OK=0
    [ -n "$H_DATA" ] || H_DATA=0
    [ -n "$H_SECS" ] || H_SECS=0
}

# The small-request phase both scripts have (small GETs, unary calls):
# a warm-up, then REPS rounds of h2load_run (the script's: server_pid url
# n connections streams), REQS requests over 8 connections x 16 streams,
# against every server, in a rotating order so that none always goes
# first. Every answer must be 2xx with BYTES body bytes. Reads the
# caller's arrays names, labels, pids and urls, and sets the caller's
# med (RATE_UNIT medians) and us (the server's cpu microseconds per
# request): bash's dynamic scope, the caller declares them local. Prints
# the table; the caller prints its heading and what the figures say.
# shellcheck disable=SC2154
h2load_rows() { # rate_unit (req/s) cpu_unit (us/req) bytes_per_answer
    local runit=$1 cunit=$2 bytes=$3 n=${#names[@]} r k i
    local -A RATE SCPU CCPU USREQ
    for ((i = 0; i < n; i++)); do       # warm-up, untimed
        h2load_run "${pids[i]}" "${urls[i]}" $((REQS / 10 + 100)) 8 16
    done
    for ((r = 0; r < REPS; r++)); do
        for ((k = 0; k < n; k++)); do
            i=$(((k + r) % n))
            h2load_run "${pids[i]}" "${urls[i]}" "$REQS" 8 16
            if [ "$H_OK" != "$REQS" ] || [ "$H_DATA" != $((bytes * REQS)) ]; then
                fail "${labels[i]}: $H_OK of $REQS requests answered 2xx, $H_DATA body bytes"
                continue
            fi
            RATE[$i]+="$H_RATE "
            SCPU[$i]+="$(pct "$H_SCPU" "$H_SECS") "
            CCPU[$i]+="$(pct "$H_CPU" "$H_SECS") "
            USREQ[$i]+="$(awk -v c="$H_SCPU" -v n="$REQS" 'BEGIN { printf "%.3f", 1e6 * c / n }') "
            [ "$VERBOSE" = 1 ] && echo "  rep $r ${names[i]}: $H_RATE $runit, server cpu $H_SCPU s, h2load cpu $H_CPU s, $H_SECS s"
        done
    done
    echo "| server | $runit | range | server cpu | h2load cpu | server $cunit |"
    echo "|---|---|---|---|---|---|"
    for ((i = 0; i < n; i++)); do
        med[i]=$(median ${RATE[$i]:-0})
        us[i]=$(median ${USREQ[$i]:-0})
        printf '| %s | %.0f | %s | %s%% | %s%% | %.2f |\n' "${labels[i]}" "${med[i]}" \
            "$(range %.0f ${RATE[$i]:-0})" "$(median ${SCPU[$i]:-0})" \
            "$(median ${CCPU[$i]:-0})" "${us[i]}"
    done
}

# ---- figures over the reps -----------------------------------------------

median() {
    printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 }
        END { if (NR == 0) print "nan"; else if (NR % 2) print a[(NR + 1) / 2];
              else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

range() { # format values...
    local f=$1
    shift
    printf '%s\n' "$@" | sort -g | awk -v f="$f" 'NR == 1 { lo = $1 } { hi = $1 }
        END { printf f "-" f, lo, hi }'
}

ratio() {
    awk -v a="$1" -v b="$2" -v f="$RATIO_FMT" \
        'BEGIN { if (b > 0) printf f, a / b; else print "nan" }'
}

verdict() { # ratio goal
    awk -v r="$1" -v g="$2" 'BEGIN { print (r != "nan" && r >= g) ? "met" : "MISSED" }'
}

pct() { # cpu_seconds wall_seconds
    awk -v c="$1" -v t="$2" 'BEGIN { printf "%.0f", (t > 0 ? 100 * c / t : 0) }'
}
