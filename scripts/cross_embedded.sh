#!/bin/bash
# Cross-build the embedded profile (CMake option STRATA_EMBEDDED) for a
# Cortex-M4 with Debian's gcc-arm-none-eabi, print its size per layer, and
# fail when the profile's .text is over budget or when it needs anything
# from outside but the C string functions (no malloc, stdio, sockets, OS).
#
#   cross_embedded.sh [BUILD_DIR]     the cross-build (default: a temp dir)
#   cross_embedded.sh --symbols NM FILE...
#                                     only the symbol check, with the nm
#                                     given, on objects or archives (ctest
#                                     runs it on the host build's library)
#
# STRATA_TEXT_BUDGET (bytes, default 12288) is the budget for code (.text);
# STRATA_FLASH_BUDGET (default 13312) the limit for all the profile puts in
# flash (.text, .rodata, .data), so that nothing moves out of the budget
# into tables unseen; CROSS (default arm-none-eabi-) the tool prefix.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# What the profile may take from outside: the string functions, compiler
# and sanitizer runtime helpers. Anything else (malloc, printf, socket,
# getrandom, open, wolfCrypt, zlib...) fails the check.
allowed='^(mem(chr|cmp|cpy|move|set)|str(chr|rchr|cmp|ncmp|len|pbrk|str|spn|cspn)|__aeabi_[a-z0-9_]+|__(asan|ubsan|sanitizer)_[A-Za-z0-9_]+|__stack_chk_(fail|guard)|__(mem|str)[a-z]*_chk|_GLOBAL_OFFSET_TABLE_)$'

check_symbols() {
    local nm=$1 defined undefined bad
    shift
    defined=$("$nm" --defined-only "$@" 2>/dev/null |
              awk 'NF == 3 { print $3 }' | sort -u)
    undefined=$("$nm" -u "$@" 2>/dev/null | awk 'NF == 2 { print $2 }' |
                sort -u)
    bad=$(comm -23 <(echo "$undefined") <(echo "$defined") |
          grep -Ev "$allowed" | grep -v '^$' || true)
    if [ -n "$bad" ]; then
        echo "embedded profile: symbols from outside the profile:" >&2
        echo "$bad" | sed 's/^/  /' >&2
        return 1
    fi
    echo "embedded profile: no allocator, stdio, socket or OS symbol" \
         "(only: $(comm -23 <(echo "$undefined") <(echo "$defined") |
                   grep -v '^$' | tr '\n' ' '))"
}

if [ "${1:-}" = "--symbols" ]; then
    [ $# -ge 3 ] || { echo "usage: $0 --symbols NM FILE..." >&2; exit 2; }
    shift
    check_symbols "$@"
    exit
fi

cross=${CROSS:-arm-none-eabi-}
budget=${STRATA_TEXT_BUDGET:-12288}
flash_budget=${STRATA_FLASH_BUDGET:-13312}
for t in gcc size nm; do
    command -v "${cross}$t" >/dev/null ||
        { echo "${cross}$t not found (apt-get install gcc-arm-none-eabi" \
               "libnewlib-arm-none-eabi)" >&2; exit 2; }
done

if [ $# -ge 1 ]; then
    build=$1
    mkdir -p "$build"
else
    build=$(mktemp -d)
    trap 'rm -rf "$build"' EXIT
fi

cmake -S "$root" -B "$build" -DSTRATA_EMBEDDED=ON \
    -DCMAKE_SYSTEM_NAME=Generic -DCMAKE_SYSTEM_PROCESSOR=arm \
    -DCMAKE_C_COMPILER="${cross}gcc" \
    -DCMAKE_TRY_COMPILE_TARGET_TYPE=STATIC_LIBRARY -DCMAKE_BUILD_TYPE= \
    -DCMAKE_C_FLAGS="-mcpu=cortex-m4 -mthumb -Os -ffunction-sections -fdata-sections -Werror" \
    >"$build/configure.log" ||
    { cat "$build/configure.log" >&2; exit 1; }
cmake --build "$build" -j2 --target strata_embedded

mapfile -t objs < <(find "$build" -name '*.c.obj' -o -name '*.c.o' | sort)
[ ${#objs[@]} -gt 0 ] || { echo "no objects built in $build" >&2; exit 1; }

layer_of() {
    case $(basename "$1") in
        stream.c.* | buffered.c.*) echo core ;;
        line.c.*) echo line ;;
        lenprefix.c.*) echo lenprefix ;;
        http1.c.*) echo http1 ;;
        ws.c.* | ws_handshake.c.* | utf8.c.*) echo ws ;;
        *) echo other ;;
    esac
}

# Per object, its sections: .text.* (code, what the budget counts: the
# .text figure `size -A` gives, the measure of the libwslay figure the
# issue compares with), .rodata.* (tables and string literals), .data, .bss.
declare -A text rodata data bss
for o in "${objs[@]}"; do
    l=$(layer_of "$o")
    read -r t r d b < <("${cross}size" -A "$o" | awk '
        $1 ~ /^\.text/ { t += $2 } $1 ~ /^\.rodata/ { r += $2 }
        $1 ~ /^\.data/ { d += $2 } $1 ~ /^\.bss/ { b += $2 }
        END { print t + 0, r + 0, d + 0, b + 0 }')
    text[$l]=$(( ${text[$l]:-0} + t ))
    rodata[$l]=$(( ${rodata[$l]:-0} + r ))
    data[$l]=$(( ${data[$l]:-0} + d ))
    bss[$l]=$(( ${bss[$l]:-0} + b ))
done

echo "embedded profile, Cortex-M4 (-mcpu=cortex-m4 -mthumb -Os), bytes:"
printf '%-10s %7s %7s %7s %6s %6s\n' layer .text .rodata flash .data .bss
tt=0 tr=0 td=0 tb=0
for l in core line lenprefix http1 ws other; do
    [ -n "${text[$l]:-}" ] || continue
    printf '%-10s %7d %7d %7d %6d %6d\n' "$l" "${text[$l]}" "${rodata[$l]}" \
        $(( text[$l] + rodata[$l] + data[$l] )) "${data[$l]}" "${bss[$l]}"
    tt=$(( tt + text[$l] )); tr=$(( tr + rodata[$l] ))
    td=$(( td + data[$l] )); tb=$(( tb + bss[$l] ))
done
printf '%-10s %7d %7d %7d %6d %6d\n' total "$tt" "$tr" $(( tt + tr + td )) \
    "$td" "$tb"

status=0
check_symbols "${cross}nm" "${objs[@]}" || status=1
flash=$(( tt + tr + td ))
if [ "$tt" -gt "$budget" ]; then
    echo "embedded profile: .text $tt bytes is over the budget of" \
         "$budget" >&2
    status=1
else
    echo "embedded profile: .text $tt bytes, budget $budget"
fi
if [ "$flash" -gt "$flash_budget" ]; then
    echo "embedded profile: flash (.text .rodata .data) $flash bytes is" \
         "over the limit of $flash_budget" >&2
    status=1
else
    echo "embedded profile: flash (.text .rodata .data) $flash bytes," \
         "limit $flash_budget"
fi
exit $status
