#!/usr/bin/env bash
# shellcheck shell=bash disable=SC2154 # sourced by build.sh, which defines $PREFIX and $jobs
# SQLite with what GDAL (GPKG, SQLite/SpatiaLite dialect) and PROJ (proj.db) use: R*Tree,
# column metadata, serialize/deserialize. The shell is built too: PROJ needs it to make proj.db.
export CFLAGS="$CFLAGS -DSQLITE_ENABLE_COLUMN_METADATA=1 -DSQLITE_ENABLE_RTREE=1 -DSQLITE_ENABLE_FTS5=1 -DSQLITE_ENABLE_DBSTAT_VTAB=1 -DSQLITE_ENABLE_MATH_FUNCTIONS=1 -DSQLITE_ENABLE_DESERIALIZE=1"
# Upstream's sqlite-autoconf tarball carries the amalgamation; Debian's orig is the full source
# tree, which generates it (with the bundled JimTCL) and also has a TCL extension to turn off.
# --soname=legacy: the traditional libsqlite3.so.0.
extra=()
[[ -f sqlite3.c ]] || extra=(--disable-tcl)
./configure --prefix="$PREFIX" --libdir="$PREFIX/lib" "${configure_args[@]}" --disable-static --enable-shared \
    --soname=legacy "${extra[@]}"
make -j "$jobs"
make install
