#!/usr/bin/env bash
# shellcheck shell=bash disable=SC2154 # sourced by build.sh, which defines $PREFIX and $jobs
# libjpeg-turbo: the libjpeg API (8-bit; GDAL has its own 12-bit copy); SIMD through nasm.
cmake_install -DENABLE_STATIC=OFF -DWITH_TURBOJPEG=OFF -DWITH_TOOLS=OFF -DWITH_TESTS=OFF
