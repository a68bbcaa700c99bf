#!/usr/bin/env bash
# make-certs.sh DIR ID... - certificates for a local KeyVal cluster with TLS (docs/SECURITY.md),
# made with the openssl command-line tool:
#   DIR/ca.crt, DIR/ca.key              a CA (CN keyval-ca), valid 10 years
#   DIR/node-ID.crt, DIR/node-ID.key    per node id: CN keyval-node-ID (the name a peer's id is checked
#                                       against), subjectAltName URI:keyval://node/ID and IP:127.0.0.1,
#                                       for server and client use (peer links are mutual TLS)
#   DIR/client.crt, DIR/client.key      a client certificate (CN keyval-client), for --client-ca
# Keys are ECDSA P-256, readable by their owner only. Existing files in DIR are overwritten.
# Example: scripts/make-certs.sh /tmp/kv-certs 1 2 3
set -euo pipefail
if (($# < 2)); then
  echo "usage: $0 DIR ID... (node ids, positive integers)" >&2
  exit 2
fi
dir=$1
shift
for id in "$@"; do
  [[ $id =~ ^[1-9][0-9]*$ ]] || { echo "make-certs: node id '$id' is not a positive integer" >&2; exit 2; }
done
command -v openssl >/dev/null || { echo "make-certs: the openssl tool is missing (scripts/install-deps.sh)" >&2; exit 1; }
mkdir -p "$dir"
umask 077
days_ca=3650
days=825

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# sign NAME CN EXTENSIONS: NAME.key, NAME.csr -> NAME.crt signed by the CA
sign() {
  local name=$1 cn=$2 extensions=$3
  key "$dir/$name.key"
  openssl req -new -key "$dir/$name.key" -subj "/CN=$cn" -out "$dir/$name.csr"
  openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
    -days "$days" -sha256 -out "$dir/$name.crt" -extfile <(printf '%s\n' "$extensions") 2>/dev/null
  rm -f "$dir/$name.csr"
}

key "$dir/ca.key"
openssl req -x509 -new -key "$dir/ca.key" -subj "/CN=keyval-ca" -days "$days_ca" -sha256 -out "$dir/ca.crt" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
for id in "$@"; do
  sign "node-$id" "keyval-node-$id" \
    "$(printf 'subjectAltName=URI:keyval://node/%s,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=critical,digitalSignature' "$id")"
done
sign client keyval-client "$(printf 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature')"
rm -f "$dir/ca.srl"
echo "make-certs: $dir: ca.crt, node-{$(IFS=,; echo "$*")}.crt/.key, client.crt/.key"
