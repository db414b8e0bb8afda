#!/usr/bin/env bash
# shellcheck shell=bash disable=SC2154 # sourced by build.sh, which defines $PREFIX and $jobs
# nghttp2: the HTTP/2 library curl uses (GDAL_HTTP_VERSION=2 and multiplexed /vsicurl/).
cmake_install -DENABLE_LIB_ONLY=ON -DBUILD_STATIC_LIBS=OFF -DENABLE_DOC=OFF -DENABLE_APP=OFF \
    -DENABLE_HPACK_TOOLS=OFF -DENABLE_EXAMPLES=OFF
