#!/usr/bin/env bash
# shellcheck shell=bash disable=SC2154 # sourced by build.sh, which defines $PREFIX and $jobs
# libwebp (and libsharpyuv, which it needs): libraries only, no command-line tools.
# GCC before 11 (Debian 11, the ABI floor, has 10) lacks the _mm256_cvtsi256_si32 intrinsic
# libwebp's AVX2 code uses, and links a library with an undefined reference to it: there, build
# without SIMD (WebP decoding is slower; AL2023's GCC 11 and newer keep it).
simd=ON
if (($(${CC:-gcc} -dumpversion | cut -d. -f1) < 11)); then simd=OFF; fi
cmake_install -DWEBP_BUILD_ANIM_UTILS=OFF -DWEBP_BUILD_CWEBP=OFF -DWEBP_BUILD_DWEBP=OFF \
    -DWEBP_BUILD_GIF2WEBP=OFF -DWEBP_BUILD_IMG2WEBP=OFF -DWEBP_BUILD_VWEBP=OFF \
    -DWEBP_BUILD_WEBPINFO=OFF -DWEBP_BUILD_WEBPMUX=OFF -DWEBP_BUILD_EXTRAS=OFF \
    "-DWEBP_ENABLE_SIMD=$simd"
