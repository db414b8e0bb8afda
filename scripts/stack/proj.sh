#!/usr/bin/env bash
# shellcheck shell=bash disable=SC2154 # sourced by build.sh, which defines $PREFIX and $jobs
# PROJ with network grids (curl) and GeoTIFF grids (libtiff); projinfo, cs2cs & co. The
# sqlite3 shell from the stack (on PATH) turns the SQL sources into proj.db.
# TIFF_LIBRARY by name: PROJ 9.1 links ${TIFF_LIBRARY}, which CMake's FindTIFF leaves unset when
# it finds libtiff through libtiff's own CMake package (then libproj would not link libtiff).
cmake_install -DENABLE_CURL=ON -DENABLE_TIFF=ON -DBUILD_APPS=ON -DBUILD_PROJSYNC=OFF \
    "-DEXE_SQLITE3=$PREFIX/bin/sqlite3" \
    "-DTIFF_LIBRARY=$PREFIX/lib/libtiff.so" "-DTIFF_INCLUDE_DIR=$PREFIX/include"
