# Makes the TLS certificates of a throwaway test PostgreSQL cluster (the test kit's private
# cluster, tests/support/src/pg.rs, and the one .ci/run starts), with the openssl command line:
#
#   sh pg-tls-certs.sh CA_DIR DATA_DIR
#
# writes CA_DIR/ca.crt, a throwaway CA's certificate (what clients trust), and
# DATA_DIR/server.crt and DATA_DIR/server.key (mode 0600: PostgreSQL refuses a key others may
# read), a server certificate that CA signed for the names localhost and 127.0.0.1 and nothing
# else. Run it as the cluster's owner, so the key is the owner's. The CA's key is deleted once
# the server's certificate is signed: nothing else can ever be signed by that CA. On failure it
# prints one line saying why (no openssl, or what openssl said) and exits non-zero.
set -u
ca_dir=$1 data=$2
command -v openssl >/dev/null 2>&1 || { echo "the openssl command is not installed"; exit 1; }
umask 077
work=$(mktemp -d "$ca_dir/tls.XXXXXXXX") || { echo "mktemp -d in $ca_dir failed"; exit 1; }
trap 'rm -rf "$work"' EXIT
step() {
  "$@" >>"$work/log" 2>&1 || {
    echo "openssl failed: $(tail -n 2 "$work/log" | tr '\n' ' ')"
    exit 1
  }
}
printf '%s\n' 'basicConstraints=critical,CA:TRUE' 'keyUsage=critical,keyCertSign,cRLSign' \
  'subjectKeyIdentifier=hash' >"$work/ca.ext"
printf '%s\n' 'basicConstraints=critical,CA:FALSE' 'keyUsage=critical,digitalSignature' \
  'extendedKeyUsage=serverAuth' 'subjectAltName=DNS:localhost,IP:127.0.0.1' \
  'subjectKeyIdentifier=hash' 'authorityKeyIdentifier=keyid' >"$work/server.ext"
# P-256 keys: quick to make, and both PostgreSQL (OpenSSL) and rustls take them.
step openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/ca.key"
step openssl req -new -key "$work/ca.key" -subj "/CN=lode test CA" -out "$work/ca.csr"
step openssl x509 -req -in "$work/ca.csr" -signkey "$work/ca.key" -days 30 -sha256 \
  -extfile "$work/ca.ext" -out "$work/ca.crt"
step openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/server.key"
step openssl req -new -key "$work/server.key" -subj "/CN=localhost" -out "$work/server.csr"
step openssl x509 -req -in "$work/server.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" \
  -CAcreateserial -CAserial "$work/ca.srl" -days 30 -sha256 -extfile "$work/server.ext" \
  -out "$work/server.crt"
cp "$work/server.crt" "$work/server.key" "$data/" || { echo "cannot write to $data"; exit 1; }
chmod 600 "$data/server.key" "$data/server.crt"
cp "$work/ca.crt" "$ca_dir/ca.crt" && chmod 644 "$ca_dir/ca.crt" || { echo "cannot write $ca_dir/ca.crt"; exit 1; }
