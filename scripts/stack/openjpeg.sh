#!/usr/bin/env bash
# shellcheck shell=bash disable=SC2154 # sourced by build.sh, which defines $PREFIX and $jobs
# OpenJPEG: the JPEG 2000 library for the JP2OpenJPEG driver; no codec tools.
cmake_install -DBUILD_CODEC=OFF -DBUILD_STATIC_LIBS=OFF -DBUILD_DOC=OFF
