#!/usr/bin/env bash
# Regenerates the PKI of the .sswan samples (run from this directory; the
# samples embed these files, so rerun gen-samples after it). Certificates
# are valid for 100 years so that the tests do not expire.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p pki && cd pki
days=36500
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
	-days $days -subj "/C=CH/O=qcdvpn test/CN=qcdvpn test CA" \
	-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
openssl x509 -in ca.pem -outform der -out ca.der
# alice: RSA, identified by her e-mail address.
openssl req -newkey rsa:2048 -nodes -keyout alice.key -out alice.csr -subj "/C=CH/O=qcdvpn test/CN=alice" 2>/dev/null
openssl x509 -req -in alice.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out alice.pem -days $days \
	-extfile <(printf 'subjectAltName=email:alice@example.com\nextendedKeyUsage=clientAuth\n') 2>/dev/null
# carol: ECDSA, no subjectAltName: identified by her DN.
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout carol.key -out carol.csr -subj "/C=CH/O=qcdvpn test/CN=carol" 2>/dev/null
openssl x509 -req -in carol.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out carol.pem -days $days 2>/dev/null
# A gateway certificate (not a CA), for the "remote.cert is a leaf" warning.
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout gw.key -out gw.csr -subj "/C=CH/O=qcdvpn test/CN=vpn.example.com" 2>/dev/null
openssl x509 -req -in gw.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out gw.pem -days $days \
	-extfile <(printf 'subjectAltName=DNS:vpn.example.com\n') 2>/dev/null
# PKCS#12 as the Android app takes them: legacy encryption (what
# golang.org/x/crypto/pkcs12 reads), with and without a password.
openssl pkcs12 -export -legacy -in alice.pem -inkey alice.key -certfile ca.pem -name alice -passout pass:test -out alice.p12
openssl pkcs12 -export -legacy -in carol.pem -inkey carol.key -name carol -passout pass: -out carol.p12
# OpenSSL 3's default (AES-256, PBES2): not readable, to test the error.
openssl pkcs12 -export -in carol.pem -inkey carol.key -name carol -passout pass:test -out carol-aes.p12
rm -f ./*.csr ./*.srl ./*.key
