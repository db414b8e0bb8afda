#!/usr/bin/env bash
# shellcheck shell=bash disable=SC2154 # sourced by build.sh, which defines $PREFIX and $jobs
# libpng: library only, against our zlib.
cmake_install -DPNG_STATIC=OFF -DPNG_SHARED=ON -DPNG_TESTS=OFF -DPNG_TOOLS=OFF -DPNG_EXECUTABLES=OFF \
    "-DZLIB_ROOT=$PREFIX"
