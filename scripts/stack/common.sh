#!/usr/bin/env bash
# Shared steps of the native-stack recipes (scripts/stack/<name>.sh), sourced by build.sh.
# Every library installs under $PREFIX (/opt), shared objects only, into lib/ on every
# distribution; nothing is taken from the build OS but its compiler and build tools.
set -euo pipefail

: "${PREFIX:=/opt}"
jobs=$(nproc)

# -O2, not CMake's Release default -O3: smaller objects and a faster compile, no measurable
# difference for I/O-bound GDAL work. No debug info: layers are stripped anyway.
export CFLAGS="${CFLAGS:--O2 -g0}"
export CXXFLAGS="${CXXFLAGS:--O2 -g0}"
# Our own libraries are found through CMAKE_PREFIX_PATH and pkg-config, never through
# CPPFLAGS/LDFLAGS: CMake takes an -L from LDFLAGS for an implicit link directory and then
# leaves /opt/lib out of the build tree's RPATH, and PROJ's own tools fail to link.
export PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig"

cmake_args=(
    -G Ninja
    -DCMAKE_BUILD_TYPE=Release
    "-DCMAKE_C_FLAGS_RELEASE=-O2 -DNDEBUG"
    "-DCMAKE_CXX_FLAGS_RELEASE=-O2 -DNDEBUG"
    "-DCMAKE_INSTALL_PREFIX=$PREFIX"
    -DCMAKE_INSTALL_LIBDIR=lib
    "-DCMAKE_PREFIX_PATH=$PREFIX"
    # No package registry: what CMake finds comes from /opt (CMAKE_PREFIX_PATH, searched first)
    # or the OS, which holds no library packages (scripts/packages/*-build.txt); the policy
    # check would name any library that leaked in from there anyway.
    -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF
    -DBUILD_SHARED_LIBS=ON
    -DBUILD_TESTING=OFF
)
configure_args=()

# Cross-compiling ($CROSS: the GNU triplet of Debian's cross toolchain, set by docker/gdal): the
# compilers and binutils by their prefixed names, CMake's toolchain file, configure's --host, and
# pkg-config confined to /opt (the build host's own .pc files describe the wrong architecture).
if [[ -n ${CROSS:-} ]]; then
    export CC=$CROSS-gcc CXX=$CROSS-g++ AR=$CROSS-ar RANLIB=$CROSS-ranlib STRIP=$CROSS-strip
    export PKG_CONFIG_LIBDIR="$PREFIX/lib/pkgconfig"
    cmake_args+=("-DCMAKE_TOOLCHAIN_FILE=$(dirname "${BASH_SOURCE[0]}")/cross.cmake")
    configure_args+=("--host=$CROSS" "--build=$(gcc -dumpmachine)")
fi

# unpack NAME: /tmp/src/NAME.tar (any compression; a zip too) into ./NAME, then cd there.
unpack() {
    local name=$1 archive=/tmp/src/$1.tar
    mkdir -p "$name"
    if [[ $(head -c 2 "$archive") == PK ]]; then
        unzip -q "$archive" -d "$name.zip"
        mv "$name.zip"/*/* "$name/"
        rm -rf "$name.zip"
    else
        tar -xf "$archive" -C "$name" --strip-components=1
    fi
    cd "$name"
}

# cmake_install [ARG...]: configure in _build with the shared arguments, build, install.
cmake_install() {
    cmake -S "${CMAKE_SOURCE:-.}" -B _build "${cmake_args[@]}" "$@"
    cmake --build _build -j "$jobs"
    cmake --install _build
}

# autotools_install [ARG...]: ./configure with the shared arguments, make, make install.
autotools_install() {
    ./configure --prefix="$PREFIX" --libdir="$PREFIX/lib" --disable-static --enable-shared \
        "${configure_args[@]}" "$@"
    make -j "$jobs"
    make install
}
