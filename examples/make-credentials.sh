#!/bin/sh
# Makes examples/credentials.zip: a synthetic credentials archive shaped like
# the ones OTA Connect hands out, for the README's first command and for the
# benchmark. Everything in it is fake: a self-signed EC P-256 CA made here,
# hosts under .example.test (reserved, never resolvable), a made-up OAuth2
# secret, and a fresh ED25519 signing key that nothing trusts.
#
#   sh examples/make-credentials.sh            # rewrites examples/credentials.zip
#
# Needs openssl (3.x) and python3. The output differs on every run (new
# keys); the committed archive is one such run.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

uuid=5e1f0c2a-7b3d-4c8e-9a61-2f4d8b0e9c17
# The namespace CA (10 years, CA:TRUE), as the server's own CA would be.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout ca.key -out ca.pem -days 3650 -subj "/CN=$uuid" \
    -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
# The shared provisioning client cert (EC P-256, clientAuth). Ten years, so
# the example does not expire under the README's feet.
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout client.key -out client.csr -subj "/CN=example-shared-provisioning" 2>/dev/null
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=critical,clientAuth\n' > ext.cnf
openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
    -days 3650 -sha256 -extfile ext.cnf -out client.pem 2>/dev/null
# Empty password, OpenSSL 3's default form (PBES2 AES-256-CBC, SHA-256 MAC).
openssl pkcs12 -export -in client.pem -inkey client.key -certfile ca.pem \
    -name device_registration -passout pass: -out autoprov_credentials.p12

printf 'https://%s.device-gateway.example.test:443' "$uuid" > autoprov.url
printf 'https://%s.api-gateway.example.test' "$uuid" > api_gateway.url
printf 'https://%s.tuf-reposerver.example.test' "$uuid" > tufrepo.url
cat > treehub.json <<JSON
{
  "oauth2": {
    "server": "https://auth.example.test",
    "client_id": "00000000-0000-4000-8000-000000000000",
    "client_secret": "EXAMPLE-ONLY-not-a-real-secret"
  },
  "ostree": {
    "server": "https://treehub.example.test/api/v3"
  }
}
JSON

# garage-sign's offline signing pair, ED25519: public 32 bytes hex, private
# 64 bytes hex (seed then public).
openssl genpkey -algorithm ed25519 -outform DER -out ed.der
openssl pkey -in ed.der -inform DER -pubout -outform DER -out ed.pub.der
seed=$(tail -c 32 ed.der | od -An -v -tx1 | tr -d ' \n')
pub=$(tail -c 32 ed.pub.der | od -An -v -tx1 | tr -d ' \n')
printf '{"keytype": "ED25519", "keyval": {"public": "%s"}}' "$pub" > targets.pub
printf '{"keytype": "ED25519", "keyval": {"private": "%s%s"}}' "$seed" "$pub" > targets.sec
keyid=$(printf '%s' "$pub" | sha256sum | cut -c1-64)
cat > root.json <<JSON
{"signatures":[],"signed":{"_type":"Root","consistent_snapshot":false,"expires":"2036-01-01T00:00:00Z","keys":{"$keyid":{"keytype":"ED25519","keyval":{"public":"$pub"}}},"roles":{"root":{"keyids":["$keyid"],"threshold":1},"snapshot":{"keyids":["$keyid"],"threshold":1},"targets":{"keyids":["$keyid"],"threshold":1},"timestamp":{"keyids":["$keyid"],"threshold":1}},"version":1}}
JSON

python3 - "$here/credentials.zip" <<'PY'
import sys, zipfile
names = ["autoprov.url", "autoprov_credentials.p12", "api_gateway.url", "root.json",
         "targets.pub", "targets.sec", "treehub.json", "tufrepo.url"]
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z:
    for n in names:
        info = zipfile.ZipInfo(n, date_time=(2026, 1, 1, 0, 0, 0))
        info.external_attr = 0o100644 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        z.writestr(info, open(n, "rb").read())
PY
echo "wrote $here/credentials.zip"
