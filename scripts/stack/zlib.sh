#!/usr/bin/env bash
# shellcheck shell=bash disable=SC2154 # sourced by build.sh, which defines $PREFIX and $jobs
# zlib: its own configure script (not autoconf); shared library only.
./configure --prefix="$PREFIX" --libdir="$PREFIX/lib" --shared
make -j "$jobs"
make install
