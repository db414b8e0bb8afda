#!/usr/bin/env bash
# shellcheck shell=bash disable=SC2154 # sourced by build.sh, which defines $PREFIX and $jobs
# Expat: the XML parser of the KML, GPX, GML, XLSX, ODS, SVG and OSM drivers.
# The release tarball has the library at its top; the GitHub tag archive (Debian's orig) in expat/.
CMAKE_SOURCE=.
[[ -f expat/CMakeLists.txt ]] && CMAKE_SOURCE=expat
CMAKE_SOURCE=$CMAKE_SOURCE cmake_install -DEXPAT_BUILD_TOOLS=OFF -DEXPAT_BUILD_EXAMPLES=OFF -DEXPAT_BUILD_TESTS=OFF \
    -DEXPAT_BUILD_DOCS=OFF -DEXPAT_SHARED_LIBS=ON
