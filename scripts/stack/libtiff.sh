#!/usr/bin/env bash
# shellcheck shell=bash disable=SC2154 # sourced by build.sh, which defines $PREFIX and $jobs
# libtiff for PROJ (GeoTIFF grids). GDAL keeps its internal, symbol-renamed copy, which
# carries the LERC codec; this one only needs the codecs grids use.
cmake_install -Dtiff-tools=OFF -Dtiff-tests=OFF -Dtiff-contrib=OFF -Dtiff-docs=OFF -Dcxx=OFF \
    -Djbig=OFF -Dlerc=OFF -Dwebp=OFF -Djpeg=ON -Dzlib=ON -Dlibdeflate=ON -Dzstd=ON -Dlzma=ON
# The C++ stream API is built whatever -Dcxx says in some releases; PROJ does not use it.
rm -f "$PREFIX"/lib/libtiffxx*
