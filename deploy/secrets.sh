#!/usr/bin/env bash
# Make the secrets every node of one Thingstead cluster must share (docs/cluster.md, "Shared certificates
# and credentials"):
#   ca.pem, ca.key          the platform CA: devices trust it, and the node that serves CreateKeysAndCertificate
#                           or a provisioning claim signs device certificates with it (EC P-256, PKCS#8).
#   server.pem, server.key  the MQTT/HTTPS server certificate, issued by that CA for the names devices use.
#   master.key              32 random bytes (hex) that encrypt the access-key secrets in PostgreSQL: a node with
#                           another master key cannot read the admin key the first node created.
#   ota-url.key             32 random bytes (hex) that sign firmware download URLs, so any node verifies them.
#
# Usage: deploy/secrets.sh OUT_DIR NAME [NAME...]
#   NAME: DNS names (and IP addresses) devices and clients reach the load balancer by; localhost is added.
# Refuses to replace an existing CA or master key: a new CA orphans every device certificate, a new master
# key every stored access key. Delete the files yourself to start over.
set -euo pipefail

if [ $# -lt 2 ]; then
  echo "usage: $0 OUT_DIR NAME [NAME...]   (e.g. $0 deploy/secrets iot.example.com)" >&2
  exit 2
fi
out=$1
shift
command -v openssl >/dev/null || { echo "$0: openssl is needed" >&2; exit 1; }
mkdir -p "$out"
chmod 0700 "$out"
umask 077

san="DNS:localhost,IP:127.0.0.1"
for name in "$@"; do
  if [[ $name =~ ^[0-9.]+$ || $name == *:* ]]; then san+=",IP:$name"; else san+=",DNS:$name"; fi
done

if [ ! -e "$out/ca.key" ]; then
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$out/ca.key"
  openssl req -x509 -new -key "$out/ca.key" -sha256 -days 3650 \
    -subj "/O=Thingstead/CN=Thingstead cluster CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" \
    -out "$out/ca.pem"
  echo "made $out/ca.pem and ca.key"
else
  echo "kept $out/ca.pem and ca.key"
fi

# The server certificate is cheap to replace (devices check only that the CA signed it and the name): always new.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$out/server.key"
openssl req -new -key "$out/server.key" -subj "/O=Thingstead/CN=$1" -out "$out/server.csr"
openssl x509 -req -in "$out/server.csr" -CA "$out/ca.pem" -CAkey "$out/ca.key" -CAcreateserial \
  -sha256 -days 825 -out "$out/server.pem" \
  -extfile <(printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=%s\nauthorityKeyIdentifier=keyid\n' "$san") \
  2>/dev/null
rm -f "$out/server.csr" "$out/ca.srl"
echo "made $out/server.pem and server.key for $san"

for key in master.key ota-url.key; do
  if [ ! -e "$out/$key" ]; then
    openssl rand -hex 32 >"$out/$key"
    echo "made $out/$key"
  else
    echo "kept $out/$key"
  fi
done
chmod 0600 "$out"/*.key
chmod 0644 "$out"/*.pem
