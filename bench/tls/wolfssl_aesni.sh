#!/usr/bin/env bash
# Build wolfSSL with AES-NI from Debian's own source package, for the TLS
# benchmarks.
#
# Debian 12's libwolfssl-dev is built without AES-NI, so AES-GCM in TLS runs
# on the portable C code and the benchmark mostly measures that. This script
# fetches the very same source package (apt-get source wolfssl), configures it
# with the feature flags Debian's debian/rules uses plus
# --enable-aesni --enable-intelasm, and installs it into a private prefix.
#
# usage: bash bench/tls/wolfssl_aesni.sh DIR
#   builds inside DIR and installs into DIR/prefix; then point the benchmark
#   build at it with PKG_CONFIG_PATH=DIR/prefix/lib/pkgconfig
#
# Needs root on Debian 12 (bookworm) with x86-64: it may add a deb-src entry
# (a file of its own under /etc/apt/sources.list.d/, for the same mirror the
# machine already uses), run apt-get update and install build tools.
# Idempotent: if DIR/prefix/lib/pkgconfig/wolfssl.pc exists it only prints
# that directory. The last line printed is always the pkg-config directory.

set -euo pipefail

die() { echo "wolfssl_aesni: error: $*" >&2; exit 1; }
log() { echo "wolfssl_aesni: $*" >&2; }
trap 'echo "wolfssl_aesni: error: command failed at line $LINENO: $BASH_COMMAND" >&2' ERR

[ $# -eq 1 ] || die "usage: bash bench/tls/wolfssl_aesni.sh DIR"
mkdir -p "$1"
DIR=$(cd "$1" && pwd)
PREFIX=$DIR/prefix
PCDIR=$PREFIX/lib/pkgconfig

# ---- idempotence -----------------------------------------------------------
if [ -f "$PCDIR/wolfssl.pc" ]; then
    log "already built: $PCDIR/wolfssl.pc"
    echo "$PCDIR"
    exit 0
fi

# ---- preconditions ---------------------------------------------------------
[ "$(id -u)" -eq 0 ] || die "must run as root (it edits apt sources and installs packages); no sudo is used"
[ -r /etc/os-release ] || die "no /etc/os-release: not a Debian system?"
# shellcheck disable=SC1091
. /etc/os-release
if [ "${ID:-}" != debian ] || [ "${VERSION_CODENAME:-}" != bookworm ]; then
    die "meant for Debian 12 (bookworm); this is ${PRETTY_NAME:-unknown}"
fi
case "$(uname -m)" in
    x86_64|amd64) ;;
    *) die "AES-NI/intelasm need x86-64; this machine is $(uname -m)" ;;
esac
grep -qw aes /proc/cpuinfo || log "warning: this CPU does not report the aes flag; the build works but AES-NI code will not run here"

export DEBIAN_FRONTEND=noninteractive
APT_LIST=/etc/apt/sources.list.d/strata-wolfssl-src

# ---- deb-src for the same mirror -------------------------------------------
# Is there already an enabled deb-src entry for a bookworm suite?
have_bookworm_debsrc() {
    local f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        grep -Eq '^[[:space:]]*deb-src[[:space:]].*[[:space:]]bookworm([-/][^[:space:]]*)?([[:space:]]|$)' "$f" && return 0
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk '
            function flush() { if (src && suite && enabled) found = 1; src = suite = 0; enabled = 1 }
            BEGIN { enabled = 1 }
            /^[[:space:]]*$/ { flush(); next }
            /^[[:space:]]*#/ { next }
            tolower($1) == "types:"   { for (i = 2; i <= NF; i++) if ($i == "deb-src") src = 1 }
            tolower($1) == "suites:"  { for (i = 2; i <= NF; i++) if ($i ~ /^bookworm([-\/]|$)/) suite = 1 }
            tolower($1) == "enabled:" { if (tolower($2) == "no") enabled = 0 }
            END { flush(); exit found ? 0 : 1 }
        ' "$f" && return 0
    done
    return 1
}

# Write deb-src twins of the enabled "deb" entries for bookworm suites, so the
# source comes from the same mirror (and the same security/updates suites) as
# the installed binary packages.
write_debsrc() {
    local f out tmp
    tmp=$(mktemp)
    # deb822 .sources files: copy each stanza whose Types has deb and whose
    # Suites has a bookworm suite, with Types replaced by deb-src.
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        [ "$f" = "$APT_LIST.sources" ] && continue
        awk '
            function flush(   i) {
                if (deb && suite && enabled && n) {
                    for (i = 1; i <= n; i++) print buf[i]
                    print ""
                }
                n = deb = suite = 0; enabled = 1
            }
            BEGIN { enabled = 1 }
            /^[[:space:]]*$/ { flush(); next }
            /^[[:space:]]*#/ { next }
            tolower($1) == "types:" {
                for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1
                buf[++n] = "Types: deb-src"; next
            }
            tolower($1) == "suites:"  { for (i = 2; i <= NF; i++) if ($i ~ /^bookworm([-\/]|$)/) suite = 1 }
            tolower($1) == "enabled:" { if (tolower($2) == "no") enabled = 0 }
            { buf[++n] = $0 }
            END { flush() }
        ' "$f" >>"$tmp"
    done
    if [ -s "$tmp" ]; then
        out=$APT_LIST.sources
        { echo "# deb-src twin of this machine's Debian entries, added by strata's"
          echo "# bench/tls/wolfssl_aesni.sh to fetch the wolfssl source package."
          echo
          cat "$tmp"; } >"$out"
        rm -f "$tmp"
        echo "$out"
        return 0
    fi
    # One-line format: sources.list and *.list files.
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        [ "$f" = "$APT_LIST.list" ] && continue
        grep -E '^[[:space:]]*deb[[:space:]].*[[:space:]]bookworm([-/][^[:space:]]*)?([[:space:]]|$)' "$f" |
            sed -E 's/^[[:space:]]*deb[[:space:]]/deb-src /' >>"$tmp" || true
    done
    if [ -s "$tmp" ]; then
        out=$APT_LIST.list
        { echo "# deb-src twin of this machine's Debian entries, added by strata's"
          echo "# bench/tls/wolfssl_aesni.sh to fetch the wolfssl source package."
          sort -u "$tmp"; } >"$out"
        rm -f "$tmp"
        echo "$out"
        return 0
    fi
    rm -f "$tmp"
    return 1
}

if have_bookworm_debsrc; then
    log "a deb-src entry for bookworm is already configured"
else
    added=$(write_debsrc) || die "found no 'deb' entry for bookworm in /etc/apt/sources.list or /etc/apt/sources.list.d/; cannot derive a deb-src entry"
    log "added deb-src entry: $added"
    log "apt-get update"
    apt-get update -q >&2 || die "apt-get update failed after adding $added"
fi

# ---- build tools -----------------------------------------------------------
need=()
for p in dpkg-dev build-essential autoconf automake libtool pkg-config; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed' || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    log "installing: ${need[*]}"
    if ! apt-get install -y -q --no-install-recommends "${need[@]}" >&2; then
        log "install failed; retrying after apt-get update"
        apt-get update -q >&2
        apt-get install -y -q --no-install-recommends "${need[@]}" >&2 || die "could not install ${need[*]}"
    fi
fi

# ---- source package ----------------------------------------------------------
# Prefer the exact source version of the installed libwolfssl-dev, so the
# AES-NI build differs from the system one only in the AES-NI flags.
cd "$DIR"
srcdir=
for d in "$DIR"/wolfssl-*/; do
    [ -f "$d/debian/rules" ] && srcdir=${d%/}
done
if [ -z "$srcdir" ]; then
    want=wolfssl
    v=$(dpkg-query -W -f='${source:Version}' libwolfssl-dev 2>/dev/null || true)
    [ -n "$v" ] && want="wolfssl=$v"
    log "apt-get source $want (a warning about the _apt sandbox user is expected as root)"
    if ! apt-get source -q "$want" >&2; then
        [ "$want" = wolfssl ] && die "apt-get source wolfssl failed"
        log "version $v not available as source; taking the current one"
        apt-get source -q wolfssl >&2 || die "apt-get source wolfssl failed"
    fi
    for d in "$DIR"/wolfssl-*/; do
        [ -f "$d/debian/rules" ] && srcdir=${d%/}
    done
    [ -n "$srcdir" ] || die "apt-get source did not unpack a wolfssl-*/debian/rules under $DIR"
fi
log "source tree: $srcdir"
cd "$srcdir"

# ---- Debian's configure flags ------------------------------------------------
# Read the flags from the package's own debian/rules (comments dropped,
# continuation lines joined): the --enable-*/--disable-*/--with-*/--without-*
# words given to dh_auto_configure. For 5.5.4-2+deb12u3 that is
#   --enable-distro --enable-pkcs11 --disable-examples --disable-silent-rules
# (--enable-distro is the big switch: it turns on opensslall, sni, alpn, tls13,
# session tickets, ... just as for the Debian package).
rules_text=$(grep -v '^[[:space:]]*#' debian/rules | sed -e ':a' -e '/\\$/N; s/\\\n/ /; ta')
debian_flags=$(
    printf '%s\n' "$rules_text" |
        grep -E 'dh_auto_configure|configure' |
        grep -oE -- '--(enable|disable|with|without)-[A-Za-z0-9_.-]+(=[^[:space:]\\]+)?' |
        awk '!seen[$0]++' || true
)
[ -n "$debian_flags" ] || die "could not read configure flags from debian/rules of $srcdir"
# shellcheck disable=SC2206
flags=($debian_flags)

# Compiler flags as dh_auto_configure passes them: dpkg-buildflags, with the
# DEB_*MAINT* settings debian/rules exports (hardening=+all for this package).
while IFS= read -r line; do
    name=${line%%=*}; value=${line#*=}
    name=$(echo "$name" | sed -E 's/^[[:space:]]*export[[:space:]]+//; s/[[:space:]:]*$//')
    value=$(echo "$value" | sed -E 's/^[[:space:]]+//; s/[[:space:]]+$//')
    export "$name=$value"
    log "from debian/rules: $name=$value"
done < <(printf '%s\n' "$rules_text" | grep -E '^[[:space:]]*export[[:space:]]+DEB_[A-Z_]*MAINT[A-Z_]*[[:space:]]*:?=' || true)
buildflags=()
for v in CFLAGS CPPFLAGS LDFLAGS; do
    buildflags+=("$v=$(dpkg-buildflags --get "$v")")
done

# --enable-distro forces both the shared and the static library (a
# --disable-static would be overridden); linking with -lwolfssl picks the
# shared one, as with Debian's package.
flags+=(--enable-aesni --enable-intelasm "--prefix=$PREFIX")
log "configure flags: ${flags[*]}"
log "compiler flags: ${buildflags[*]}"

# ---- build -------------------------------------------------------------------
start=$(date +%s)
# The orig tarball ships configure.ac only (Debian runs dh_autoreconf).
if [ ! -x configure ]; then
    log "no configure script: running autogen.sh (autoreconf)"
    if [ -x autogen.sh ]; then ./autogen.sh >&2; else autoreconf -fi >&2; fi
fi
./configure "${flags[@]}" "${buildflags[@]}" >&2 ||
    die "configure failed (see config.log in $srcdir)"
make -j2 >&2 || die "make failed"
make install >&2 || die "make install failed"
# wolfssl.pc is what marks a finished build (see the idempotence check), so it
# is held back until every step below has passed.
pc=$PCDIR/wolfssl.pc
[ -f "$pc" ] || die "make install did not produce $pc"
mv "$pc" "$pc.partial"

# With --enable-distro, "make install" leaves options.h out (Multi-Arch);
# Debian's libwolfssl-dev.install copies it from the build tree. Do the same:
# applications must include <wolfssl/options.h> to get the matching settings.
for h in wolfssl/options.h cyassl/options.h; do
    if [ -f "$h" ]; then
        install -D -m 644 "$h" "$PREFIX/include/$h"
    fi
done

# The library keeps Debian's soname (libwolfssl.so.35), so a program linked
# against it would silently load the system copy (no AES-NI) at run time
# unless told otherwise. Put an rpath into wolfssl.pc's Libs.
# shellcheck disable=SC2016  # ${libdir} is pkg-config's variable
grep -q 'rpath' "$pc.partial" || sed -i -E 's|^(Libs:.*)$|\1 -Wl,-rpath,${libdir}|' "$pc.partial"

for d in WOLFSSL_AESNI USE_INTEL_SPEEDUP; do
    grep -q "^#define $d" "$PREFIX/include/wolfssl/options.h" ||
        die "installed options.h does not define $d"
done
mv "$pc.partial" "$pc"
log "built and installed in $(( $(date +%s) - start ))s"
echo "$PCDIR"
