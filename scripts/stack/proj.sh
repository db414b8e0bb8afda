#!/usr/bin/env bash
# shellcheck shell=bash disable=SC2154 # sourced by build.sh, which defines $PREFIX and $jobs
# PROJ with network grids (curl) and GeoTIFF grids (libtiff); projinfo, cs2cs & co. The
# sqlite3 shell from the stack (on PATH) turns the SQL sources into proj.db.
cmake_install -DENABLE_CURL=ON -DENABLE_TIFF=ON -DBUILD_APPS=ON -DBUILD_PROJSYNC=OFF \
    "-DEXE_SQLITE3=$PREFIX/bin/sqlite3"
