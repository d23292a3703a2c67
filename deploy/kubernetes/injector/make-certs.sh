#!/bin/sh
# Makes a self-signed CA and the injector's serving certificate, for clusters without
# cert-manager (with it, use deploy/kubernetes/injector-cert-manager instead).
#
#   deploy/kubernetes/injector/make-certs.sh OUT_DIR
#
# Writes OUT_DIR/ca.crt, ca.key, tls.crt, tls.key and ca-bundle-patch.json (a JSON Patch that
# puts the CA into both webhooks' caBundle), then prints the two kubectl commands that install
# them. Environment: NAMESPACE (statuscope-system), SERVICE (statuscope-injector), DAYS (365),
# EXTRA_SANS (more subjectAltName entries, such as "IP:127.0.0.1" for a local test).
# Rotate by running it again with the same OUT_DIR: the CA is kept when ca.key exists, so the
# webhook's caBundle stays valid while the new serving pair rolls out.
set -eu

out=${1:?usage: make-certs.sh OUT_DIR}
namespace=${NAMESPACE:-statuscope-system}
service=${SERVICE:-statuscope-injector}
days=${DAYS:-365}
mkdir -p "$out"
umask 077

if [ ! -s "$out/ca.key" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$out/ca.key" -out "$out/ca.crt" -days "$days" \
    -subj "/CN=statuscope-injector-ca" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi

sans="DNS:$service,DNS:$service.$namespace,DNS:$service.$namespace.svc,DNS:$service.$namespace.svc.cluster.local"
if [ -n "${EXTRA_SANS:-}" ]; then
  sans="$sans,$EXTRA_SANS"
fi
extensions="$out/tls.ext"
printf 'subjectAltName=%s\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' \
  "$sans" >"$extensions"
# Written beside, then renamed over the old pair: a reader never sees half a file.
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout "$out/tls.key.new" -out "$out/tls.csr" \
  -subj "/CN=$service.$namespace.svc" 2>/dev/null
openssl x509 -req -in "$out/tls.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" \
  -set_serial "0x$(openssl rand -hex 16)" -days "$days" \
  -extfile "$extensions" -out "$out/tls.crt.new" 2>/dev/null
rm -f "$out/tls.csr" "$extensions"
mv "$out/tls.key.new" "$out/tls.key"
mv "$out/tls.crt.new" "$out/tls.crt"

bundle=$(base64 <"$out/ca.crt" | tr -d '\n')
printf '[{"op": "add", "path": "/webhooks/0/clientConfig/caBundle", "value": "%s"},\n {"op": "add", "path": "/webhooks/1/clientConfig/caBundle", "value": "%s"}]\n' \
  "$bundle" "$bundle" >"$out/ca-bundle-patch.json"

cat <<NEXT
Wrote $out/{ca.crt,ca.key,tls.crt,tls.key,ca-bundle-patch.json}. Install them with:
  kubectl -n $namespace create secret tls statuscope-injector-tls \\
    --cert=$out/tls.crt --key=$out/tls.key --dry-run=client -o yaml | kubectl apply -f -
  kubectl patch mutatingwebhookconfiguration statuscope-injector \\
    --type=json --patch-file=$out/ca-bundle-patch.json
Keep ca.key out of the cluster.
NEXT
