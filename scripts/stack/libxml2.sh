#!/usr/bin/env bash
# shellcheck shell=bash disable=SC2154 # sourced by build.sh, which defines $PREFIX and $jobs
# libxml2 without ICU (31 MB of libicudata for nothing GDAL needs), Python, HTTP or tools.
cmake_install -DLIBXML2_WITH_ICU=OFF -DLIBXML2_WITH_PYTHON=OFF -DLIBXML2_WITH_PROGRAMS=OFF \
    -DLIBXML2_WITH_TESTS=OFF -DLIBXML2_WITH_HTTP=OFF -DLIBXML2_WITH_LZMA=OFF \
    -DLIBXML2_WITH_ZLIB=ON -DLIBXML2_WITH_ICONV=ON -DLIBXML2_WITH_MODULES=OFF -DLIBXML2_WITH_DOCS=OFF
