#!/usr/bin/env bash
# shellcheck shell=bash disable=SC2154 # sourced by build.sh, which defines $PREFIX and $jobs
# zstd: the library only (build/cmake is its CMake project).
CMAKE_SOURCE=build/cmake cmake_install -DZSTD_BUILD_PROGRAMS=OFF -DZSTD_BUILD_STATIC=OFF \
    -DZSTD_BUILD_SHARED=ON -DZSTD_BUILD_TESTS=OFF -DZSTD_LEGACY_SUPPORT=OFF
