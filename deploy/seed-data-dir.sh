#!/bin/sh
# thingstead-seed [SECRETS_DIR] [DATA_DIR]: put a cluster's shared secrets (made by deploy/secrets.sh) where
# a node looks for them before it would make its own:
#   SECRETS_DIR/ca.pem, ca.key          -> DATA_DIR/tls/ca.pem, tls/ca.key  (the CA that signs device certificates)
#   SECRETS_DIR/server.pem, server.key  -> DATA_DIR/tls/server.pem, .key    (set THINGSTEAD_TLS_CERT_FILE, _KEY_FILE
#                                                                           to them: then the node never replaces them)
#   SECRETS_DIR/master.key              -> DATA_DIR/master.key              (decrypts the access keys in PostgreSQL)
#   SECRETS_DIR/ota-url.key             -> DATA_DIR/ota-url.key             (signs firmware download URLs)
# So only the seed step needs the secrets; the node itself mounts none.
# Copies, not links: the node chmods its key files to 0600 and must own them. Run as root (compose `seed`
# service), it hands the files to THINGSTEAD_UID:THINGSTEAD_GID (default 1000:1000, the image's user).
# Overwrites what is there: the secrets directory is the cluster's source of truth.
set -eu

src=${1:-/run/secrets/thingstead}
data=${2:-${THINGSTEAD_DATA_DIR:-/var/lib/thingstead}}
uid=${THINGSTEAD_UID:-1000}
gid=${THINGSTEAD_GID:-1000}

for f in ca.pem ca.key server.pem server.key master.key ota-url.key; do
  if [ ! -r "$src/$f" ]; then
    echo "thingstead-seed: $src/$f is missing or unreadable (make the secrets with deploy/secrets.sh)" >&2
    exit 1
  fi
done

umask 077
mkdir -p "$data/tls"
cp "$src/ca.pem" "$data/tls/ca.pem"
cp "$src/ca.key" "$data/tls/ca.key"
cp "$src/server.pem" "$data/tls/server.pem"
cp "$src/server.key" "$data/tls/server.key"
cp "$src/master.key" "$data/master.key"
cp "$src/ota-url.key" "$data/ota-url.key"
chmod 0644 "$data/tls/ca.pem" "$data/tls/server.pem"
chmod 0600 "$data/tls/ca.key" "$data/tls/server.key" "$data/master.key" "$data/ota-url.key"
chmod 0700 "$data" "$data/tls"
if [ "$(id -u)" = 0 ]; then
  chown "$uid:$gid" "$data" "$data/tls" "$data/tls/ca.pem" "$data/tls/ca.key" "$data/tls/server.pem" \
    "$data/tls/server.key" "$data/master.key" "$data/ota-url.key"
fi
echo "thingstead-seed: $data has the cluster CA, server certificate, master key and URL key from $src"
