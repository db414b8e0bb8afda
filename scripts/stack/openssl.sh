#!/usr/bin/env bash
# shellcheck shell=bash disable=SC2154 # sourced by build.sh, which defines $PREFIX and $jobs
# OpenSSL: bundled (not taken from the system) so that curl, libpq and PROJ see one known
# version on every target; the Lambda policy allows no libssl (see policies/README.md).
# OPENSSLDIR is /etc/pki/tls, where Amazon Linux keeps cert.pem and openssl.cnf, so TLS
# verification finds the system CA bundle on Lambda; elsewhere SSL_CERT_FILE points at one.
# no-autoload-config: never read that openssl.cnf. Amazon Linux's and Fedora's carry keys only
# their own OpenSSL knows (rh-allow-sha1-signatures: openssl/openssl#27845), which would make
# OPENSSL_init_ssl fail, and with it every HTTPS request GDAL, PROJ and libpq make. Certificate
# paths do not come from the config file and still apply. no-apps/no-docs/no-tests: libraries only.
# Cross: OpenSSL names its target itself (linux-aarch64) and prefixes the tools' names with
# --cross-compile-prefix; the exported CC would be prefixed twice.
target=()
if [[ -n ${CROSS:-} ]]; then
    unset CC CXX AR RANLIB STRIP
    target=("linux-${CROSS%%-*}" "--cross-compile-prefix=$CROSS-")
fi
./Configure "${target[@]}" --prefix="$PREFIX" --libdir=lib --openssldir=/etc/pki/tls shared \
    no-autoload-config no-apps no-docs no-tests no-comp no-ssl3 no-weak-ssl-ciphers
make -j "$jobs"
make install_sw
