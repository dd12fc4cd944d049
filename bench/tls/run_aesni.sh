#!/usr/bin/env bash
# Run bench_tls against a wolfSSL built with AES-NI (see bench/README.md,
# "TLS").
#
# Debian 12's libwolfssl is built without AES-NI. This script
#  1. builds wolfSSL from Debian's own source package with --enable-aesni
#     --enable-intelasm into WOLFSSL_DIR (bench/tls/wolfssl_aesni.sh; a
#     finished build is reused),
#  2. configures a separate strata build in BUILD_DIR against it
#     (PKG_CONFIG_PATH, plus an rpath so that the binary loads that
#     libwolfssl and not Debian's, which has the same soname),
#  3. builds bench_tls, checks with ldd which libwolfssl it loads, and
#  4. runs it with the arguments given (e.g. --quick, --reps 3).
#
# usage: bash bench/tls/run_aesni.sh [bench_tls options]
# environment: WOLFSSL_DIR (default build/wolfssl-aesni),
#              BUILD_DIR (default build/bench-aesni), relative to the
#              source tree. Needs root the first time (wolfssl_aesni.sh
#              installs build tools and fetches the source package).

set -euo pipefail

die() { echo "run_aesni: error: $*" >&2; exit 1; }
log() { echo "run_aesni: $*" >&2; }

src=$(cd "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$src"
wolfssl_dir=${WOLFSSL_DIR:-build/wolfssl-aesni}
build_dir=${BUILD_DIR:-build/bench-aesni}

# 1. wolfSSL with AES-NI; its last line of output is the pkg-config folder.
pcdir=$(bash bench/tls/wolfssl_aesni.sh "$wolfssl_dir" | tail -n 1)
[ -f "$pcdir/wolfssl.pc" ] || die "no wolfssl.pc in '$pcdir'"
libdir=$(PKG_CONFIG_PATH=$pcdir pkg-config --variable=libdir wolfssl)
grep -q '^#define WOLFSSL_AESNI' "$libdir/../include/wolfssl/options.h" ||
    die "$libdir/../include/wolfssl/options.h does not define WOLFSSL_AESNI"
log "wolfSSL with AES-NI: $libdir"

# 2. A strata build of its own against that wolfSSL. PKG_CONFIG_PATH puts
# the private wolfssl.pc before the system's; the rpath (also in that
# wolfssl.pc's Libs) makes the loader take the private libwolfssl.so.35.
# CMake keeps what pkg-config found in its cache: a build folder that was
# configured against another wolfSSL must be removed first (checked below).
PKG_CONFIG_PATH=$pcdir${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH} \
    cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release \
    -DSTRATA_TESTS=OFF -DCMAKE_BUILD_RPATH="$libdir" >&2
cmake --build "$build_dir" --target bench_tls -j2 >&2

# 3. Which libwolfssl the binary loads.
exe=$build_dir/bench/bench_tls
loaded=$(ldd "$exe" | awk '/libwolfssl/ { print $3 }')
[ -n "$loaded" ] || die "ldd shows no libwolfssl for $exe"
case $(readlink -f "$loaded") in
    "$(readlink -f "$libdir")"/*) log "ldd: $exe loads $loaded" ;;
    *) die "$exe loads $loaded, not the AES-NI build in $libdir" \
           "(remove $build_dir and run again)" ;;
esac

# 4. The benchmark; its header says AES-NI compiled in and the library file.
exec "$exe" "$@"
