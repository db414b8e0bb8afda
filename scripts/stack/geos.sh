#!/usr/bin/env bash
# shellcheck shell=bash disable=SC2154 # sourced by build.sh, which defines $PREFIX and $jobs
# GEOS: the C++ library and its C API (shapely and GDAL use the C API).
cmake_install -DBUILD_DOCUMENTATION=OFF -DBUILD_GEOSOP=OFF -DBUILD_BENCHMARKS=OFF
