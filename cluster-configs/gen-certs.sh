#!/usr/bin/env bash
# gen-certs.sh OUTDIR [extra SANs...]
#
# Makes a kubeadm-like etcd PKI under OUTDIR with openssl (EC P-256 keys, which
# etcd 3.4 / Go and swift-nio-ssl accept):
#   etcd/ca.{crt,key}                      etcd CA
#   etcd/server.{crt,key}                  serverAuth+clientAuth, SANs below
#   etcd/peer.{crt,key}                    serverAuth+clientAuth, SANs below
#   etcd/healthcheck-client.{crt,key}      clientAuth, CN kube-etcd-healthcheck-client
#   apiserver-etcd-client.{crt,key}        clientAuth, CN kube-apiserver-etcd-client, O system:masters
#   rogue/ca.{crt,key}, rogue/client.{crt,key}   an unrelated CA and a client cert it signed
#                                                (negative tests: must be refused)
#   rogue/peer.{crt,key}                   a peer certificate (same usages and SANs as etcd/peer)
#                                          signed by the rogue CA (a member that must not join)
# SANs of server/peer: localhost, 127.0.0.1, ::1, plus every extra argument
# (arguments that parse as IPv4/IPv6 become IP SANs, the rest DNS SANs).
# Idempotent: existing keys and certificates are kept (a leaf is remade only if it
# no longer chains to its CA); delete OUTDIR to regenerate, e.g. for other SANs.
# Quiet: prints nothing on success; on failure prints openssl's error and exits non-zero.
set -euo pipefail

if [[ $# -lt 1 || "$1" == -h || "$1" == --help ]]; then
    echo "usage: $0 OUTDIR [extra SAN (IP or DNS name)...]" >&2
    exit 2
fi
out=$1; shift
days=3650

command -v openssl >/dev/null || { echo "gen-certs.sh: openssl not found" >&2; exit 1; }
mkdir -p "$out/etcd" "$out/rogue"
umask 077
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Run openssl quietly; show its output only if it fails.
ossl() {
    if ! openssl "$@" >"$tmp/log" 2>&1; then
        echo "gen-certs.sh: openssl $1 failed:" >&2
        cat "$tmp/log" >&2
        exit 1
    fi
}

is_ip() {
    [[ "$1" =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]] || [[ "$1" == *:* ]]
}

# Subject alternative names for server and peer certificates.
sans="DNS:localhost,IP:127.0.0.1,IP:::1"
for san in "$@"; do
    if is_ip "$san"; then sans+=",IP:$san"; else sans+=",DNS:$san"; fi
done

newkey() { # path
    [[ -s "$1" ]] && return 0
    ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"
}

# ca NAME_PREFIX SUBJECT
ca() {
    local p=$1 subj=$2
    newkey "$p.key"
    [[ -s "$p.crt" ]] && return 0
    ossl req -x509 -new -key "$p.key" -subj "$subj" -days "$days" -sha256 \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign" \
        -addext "subjectKeyIdentifier=hash" \
        -out "$p.crt"
}

# leaf PREFIX CA_PREFIX SUBJECT EKU [SANS]
leaf() {
    local p=$1 cap=$2 subj=$3 eku=$4 san=${5:-}
    newkey "$p.key"
    # Keep an existing certificate only if it still chains to the CA (a CA that was
    # regenerated invalidates its leaves).
    if [[ -s "$p.crt" ]] && openssl verify -CAfile "$cap.crt" "$p.crt" >/dev/null 2>&1; then
        return 0
    fi
    ossl req -new -key "$p.key" -subj "$subj" -out "$tmp/req.csr"
    {
        echo "basicConstraints=critical,CA:FALSE"
        echo "keyUsage=critical,digitalSignature,keyEncipherment"
        echo "extendedKeyUsage=$eku"
        echo "authorityKeyIdentifier=keyid"
        [[ -n "$san" ]] && echo "subjectAltName=$san"
    } >"$tmp/ext.cnf"
    ossl x509 -req -in "$tmp/req.csr" -CA "$cap.crt" -CAkey "$cap.key" \
        -set_serial "0x$(openssl rand -hex 16)" -days "$days" -sha256 \
        -extfile "$tmp/ext.cnf" -out "$p.crt"
}

ca   "$out/etcd/ca" "/CN=etcd-ca"
leaf "$out/etcd/server" "$out/etcd/ca" "/CN=kvd-server" "serverAuth,clientAuth" "$sans"
leaf "$out/etcd/peer" "$out/etcd/ca" "/CN=kvd-peer" "serverAuth,clientAuth" "$sans"
leaf "$out/etcd/healthcheck-client" "$out/etcd/ca" "/CN=kube-etcd-healthcheck-client" "clientAuth"
leaf "$out/apiserver-etcd-client" "$out/etcd/ca" "/O=system:masters/CN=kube-apiserver-etcd-client" "clientAuth"

ca   "$out/rogue/ca" "/CN=rogue-ca"
leaf "$out/rogue/client" "$out/rogue/ca" "/O=system:masters/CN=kube-apiserver-etcd-client" "clientAuth"
leaf "$out/rogue/peer" "$out/rogue/ca" "/CN=kvd-peer" "serverAuth,clientAuth" "$sans"

# Certificates are public; keys stay 0600.
chmod 0644 "$out"/etcd/*.crt "$out"/*.crt "$out"/rogue/*.crt
