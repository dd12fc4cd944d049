#!/usr/bin/env bash
# Generate the certificates and keys used by the TLS tests.
# Usage: make_certs.sh OUTDIR
# Needs only the openssl CLI (3.0 or later). Keys are throwaway test keys.
set -euo pipefail

if [ $# -ne 1 ] || [ -z "$1" ]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi

script=${BASH_SOURCE[0]}
out=${1%/}
[ -n "$out" ] || out=/

# Already done and up to date with this script: nothing to do.
if [ -f "$out/.done" ] && [ "$out/.done" -nt "$script" ]; then
    exit 0
fi

parent=$(dirname -- "$out")
mkdir -p -- "$parent"
tmp=$(cd -- "$parent" && pwd)/$(basename -- "$out").tmp.$$
rm -rf -- "$tmp"
mkdir -- "$tmp"
trap 'rm -rf -- "$tmp"' EXIT

log=$tmp/.log
# Run a command quietly; on failure show its output and stop.
run() {
    if ! "$@" >>"$log" 2>&1; then
        echo "certs: failed: $*" >&2
        cat "$log" >&2
        exit 1
    fi
}

cd -- "$tmp"

cat > ext.cnf <<'CNF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused

[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[rsa_server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[other]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:other.test
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[localhost]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

# Used by "openssl ca" for the expired certificate only.
[ca]
default_ca = ca_expired
[ca_expired]
database = cadb/index.txt
new_certs_dir = cadb
certificate = ca.pem
private_key = ca.key
default_md = sha256
policy = policy_anything
rand_serial = yes
unique_subject = no
copy_extensions = none
email_in_dn = no
[policy_anything]
commonName = supplied
CNF
export OPENSSL_CONF=$tmp/ext.cnf

eckey() {
    run openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
        -pkeyopt ec_param_enc:named_curve -out "$1"
}

# selfsigned NAME CN: a CA certificate valid for 10 years.
selfsigned() {
    eckey "$1.key"
    run openssl req -new -x509 -config ext.cnf -extensions v3_ca -sha256 \
        -days 3650 -key "$1.key" -subj "/CN=$2" -out "$1.pem"
}

# leaf NAME CN SECTION CA: a leaf signed by CA, valid for 5 years.
# No serial file exists, so openssl picks a random serial.
leaf() {
    [ -f "$1.key" ] || eckey "$1.key"
    run openssl req -new -config ext.cnf -key "$1.key" -subj "/CN=$2" \
        -out "$1.csr"
    run openssl x509 -req -in "$1.csr" -CA "$4.pem" -CAkey "$4.key" \
        -sha256 -days 1825 -extfile ext.cnf -extensions "$3" -out "$1.pem"
    rm -f -- "$1.csr"
}

selfsigned ca "strata test CA"
leaf server localhost server ca
leaf other other.test other ca
leaf client "strata test client" client ca

run openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
    -out rsa-server.key
leaf rsa-server localhost rsa_server ca

selfsigned rogue-ca "strata rogue CA"
leaf rogue localhost localhost rogue-ca

# Expired leaf: x509/req in openssl 3.0 cannot set past dates, "ca" can.
mkdir cadb
: > cadb/index.txt
eckey expired.key
run openssl req -new -config ext.cnf -key expired.key -subj "/CN=localhost" \
    -out expired.csr
run openssl ca -batch -config ext.cnf -notext -extensions localhost \
    -extfile ext.cnf -startdate 20200101000000Z -enddate 20200102000000Z \
    -in expired.csr -out expired.pem
rm -rf -- cadb expired.csr

cat server.pem ca.pem > server-full.pem

# Hashed CA directory, as c_rehash would make it.
mkdir cadir
hash=$(openssl x509 -hash -noout -in ca.pem)
cp ca.pem "cadir/$hash.0"

rm -f -- ext.cnf "$log"
chmod 600 -- *.key
touch .done
cd - >/dev/null

# Publish. If another job got there first, keep its copy.
if [ -e "$out" ] && ! { [ -f "$out/.done" ] && [ "$out/.done" -nt "$script" ]; }; then
    # Stale output from an older script version: move it aside.
    old=$tmp.old
    if mv -T -- "$out" "$old" 2>/dev/null; then
        rm -rf -- "$old"
    fi
fi
if mv -T -- "$tmp" "$out" 2>/dev/null; then
    trap - EXIT
elif [ -f "$out/.done" ]; then
    : # lost the race; the trap removes our copy
else
    echo "certs: cannot create $out" >&2
    exit 1
fi
echo "certs: $out"
