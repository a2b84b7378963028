#!/bin/sh
# gen-certs.sh - development certificates for referrald (never for production).
#
#   sh deploy/gen-certs.sh DIR                 create what is missing in DIR
#   sh deploy/gen-certs.sh --renew-server DIR  re-issue server.crt/.key (new key,
#                                              new serial, same CA) to test SIGHUP
#
# DIR receives (keys mode 0600):
#   ca.crt ca.key            the deployment's dev CA (signs server and office certs)
#   server.crt server.key    SAN IP:127.0.0.1, DNS:localhost
#   office.crt office.key    client certificate of a probation office (CN=office-bishkek)
#   office2.crt office2.key  a second office's client certificate (CN=office-osh)
#   foreign-ca.crt/.key      an unrelated CA
#   foreign.crt foreign.key  client certificate signed by the foreign CA
#   expired.crt expired.key  client certificate of the dev CA that has already expired
#
# Owns: the openssl invocations for dev PKI. Existing files are kept, so a
# second run (make demo twice) reuses the same CA and certificates.
# Must never: overwrite an existing CA, or be used for real deployments.
set -eu

renew=0
if [ "${1:-}" = "--renew-server" ]; then
	renew=1
	shift
fi
dir=${1:?usage: gen-certs.sh [--renew-server] DIR}
mkdir -p "$dir"
umask 077

# P-256 keys: fast to generate, accepted everywhere TLS 1.2+ is.
newkey() {
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
}

# Random 63-bit serial so a renewed certificate is told apart by its serial.
serial() {
	echo "0x$(openssl rand -hex 8 | sed 's/^./1/')"
}

ca() { # ca NAME CN
	[ -s "$dir/$1.crt" ] && [ -s "$dir/$1.key" ] && return 0
	newkey "$dir/$1.key"
	openssl req -x509 -new -key "$dir/$1.key" -sha256 -days 3650 -subj "/CN=$2" \
		-set_serial "$(serial)" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" \
		-out "$dir/$1.crt" 2>/dev/null
}

# issue NAME CN CA DAYS EXT
issue() {
	ext=$(mktemp)
	printf '%s\n' "$5" >"$ext"
	newkey "$dir/$1.key.new"
	openssl req -new -key "$dir/$1.key.new" -subj "/CN=$2" -out "$dir/$1.csr" 2>/dev/null
	openssl x509 -req -in "$dir/$1.csr" -CA "$dir/$3.crt" -CAkey "$dir/$3.key" \
		-set_serial "$(serial)" -days "$4" -sha256 -extfile "$ext" \
		-out "$dir/$1.crt.new" 2>/dev/null
	rm -f "$ext" "$dir/$1.csr"
	# Key first, then certificate, each by rename: a reader never sees a
	# half-written file.
	mv "$dir/$1.key.new" "$dir/$1.key"
	mv "$dir/$1.crt.new" "$dir/$1.crt"
}

have() { [ -s "$dir/$1.crt" ] && [ -s "$dir/$1.key" ]; }

SERVER_EXT="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost"
CLIENT_EXT="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"

ca ca "referrald dev CA"
if [ "$renew" = 1 ] || ! have server; then
	issue server localhost ca 825 "$SERVER_EXT"
fi
have office || issue office office-bishkek ca 825 "$CLIENT_EXT"
have office2 || issue office2 office-osh ca 825 "$CLIENT_EXT"
ca foreign-ca "some other CA"
have foreign || issue foreign office-bishkek foreign-ca 825 "$CLIENT_EXT"
# -days -1: notAfter lies a day in the past, so the dev CA's own signature is
# valid but the certificate is expired (OpenSSL 3.0 accepts a negative count).
have expired || issue expired office-expired ca -1 "$CLIENT_EXT"
chmod 0644 "$dir"/*.crt
exit 0
