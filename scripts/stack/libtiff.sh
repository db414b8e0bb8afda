#!/usr/bin/env bash
# shellcheck shell=bash disable=SC2154 # sourced by build.sh, which defines $PREFIX and $jobs
# libtiff for PROJ (GeoTIFF grids). GDAL keeps its internal, symbol-renamed copy, which
# carries the LERC codec; this one only needs the codecs grids use.
cmake_install -Dtiff-tools=OFF -Dtiff-tests=OFF -Dtiff-contrib=OFF -Dtiff-docs=OFF -Dtiff-cxx=OFF \
    -Djbig=OFF -Dlerc=OFF -Dwebp=OFF -Djpeg=ON -Dzlib=ON -Dlibdeflate=ON -Dzstd=ON -Dlzma=ON
