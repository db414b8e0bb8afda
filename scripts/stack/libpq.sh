#!/usr/bin/env bash
# shellcheck shell=bash disable=SC2154 # sourced by build.sh, which defines $PREFIX and $jobs
# libpq, the PostgreSQL client library (PostgreSQL and PostGISRaster drivers), from the
# PostgreSQL server sources: configure once, then build and install the client parts only.
# --with-system-tzdata: the server's time zone files are not built (only libpq is), so
# configure need not look for a build-host zic, which a cross build would otherwise require.
./configure --prefix="$PREFIX" --libdir="$PREFIX/lib" "${configure_args[@]}" --without-readline --without-icu \
    --without-llvm --without-gssapi --without-ldap --without-zlib --with-openssl \
    --with-includes="$PREFIX/include" --with-libraries="$PREFIX/lib" \
    --with-system-tzdata=/usr/share/zoneinfo
make -C src/interfaces/libpq -j "$jobs"
make -C src/interfaces/libpq install
make -C src/include install
make -C src/bin/pg_config install
rm -f "$PREFIX"/lib/libpgcommon*.a "$PREFIX"/lib/libpgport*.a
