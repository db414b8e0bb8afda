#!/usr/bin/env bash
# shellcheck shell=bash disable=SC2154 # sourced by build.sh, which defines $PREFIX and $jobs
# GDAL with every driver it enables by default that the stack supports.
#
# GDAL_USE_EXTERNAL_LIBS=OFF turns auto-detection off: every external library is named below,
# so nothing the build OS happens to have changes what we build. Where GDAL has an internal copy
# and no external one is named (TIFF, GeoTIFF, LERC, json-c, giflib, qhull...), it uses it: its
# libtiff is the one with the LERC codec, and its symbols are renamed, so it never meets the
# stack's libtiff (which only PROJ uses).
#
# No *_BUILD_OPTIONAL_DRIVERS=OFF and no hand list: drivers that need a library we do not ship
# (ECW, MrSID, KEA, Arrow, HEIF, JPEG-XL, ...) are skipped by GDAL itself; tests/image checks
# the drivers matrix.toml requires and the 2019 project's raster formats.
#
# CMAKE_UNITY_BUILD: GDAL's CMake supports unity builds (it excludes the files that cannot be
# merged); compiling a few hundred merged units instead of ~1000 files halves the build time.
#
# -Os for libgdal alone (the stack keeps -O2): GDAL is most of a layer's bytes, and the work a
# function does with it is bound by I/O and by the codec libraries (libdeflate, zstd, libjpeg),
# which stay -O2. README "Sizes" has the measured trade-off.
cmake_install \
    "-DCMAKE_C_FLAGS_RELEASE=-Os -DNDEBUG" "-DCMAKE_CXX_FLAGS_RELEASE=-Os -DNDEBUG" \
    -DBUILD_PYTHON_BINDINGS=OFF -DBUILD_JAVA_BINDINGS=OFF -DBUILD_CSHARP_BINDINGS=OFF \
    -DCMAKE_UNITY_BUILD=ON \
    -DGDAL_USE_EXTERNAL_LIBS=OFF \
    -DGDAL_USE_TIFF_INTERNAL=ON -DGDAL_USE_GEOTIFF_INTERNAL=ON \
    -DGDAL_USE_LERC_INTERNAL=ON -DGDAL_USE_JSONC_INTERNAL=ON \
    -DGDAL_USE_GEOS=ON -DGDAL_USE_CURL=ON -DGDAL_USE_SQLITE3=ON -DGDAL_USE_OPENSSL=ON \
    -DGDAL_USE_ZLIB=ON -DGDAL_USE_DEFLATE=ON -DGDAL_USE_ZSTD=ON -DGDAL_USE_LIBLZMA=ON \
    -DGDAL_USE_JPEG=ON -DGDAL_USE_PNG=ON -DGDAL_USE_WEBP=ON -DGDAL_USE_OPENJPEG=ON \
    -DGDAL_USE_NETCDF=ON -DGDAL_USE_HDF5=ON -DGDAL_USE_EXPAT=ON -DGDAL_USE_LIBXML2=ON \
    -DGDAL_USE_POSTGRESQL=ON -DGDAL_USE_ICONV=ON
