# CMake toolchain file for cross-compiling the stack (used when $CROSS names a GNU triplet,
# e.g. aarch64-linux-gnu; scripts/stack/common.sh adds it). Debian's cross compilers know their
# own headers and libraries; everything else is found in /opt through CMAKE_PREFIX_PATH as in a
# native build.
set(CMAKE_SYSTEM_NAME Linux)
string(REGEX MATCH "^[^-]+" CMAKE_SYSTEM_PROCESSOR "$ENV{CROSS}")
set(CMAKE_C_COMPILER "$ENV{CROSS}-gcc")
set(CMAKE_CXX_COMPILER "$ENV{CROSS}-g++")
# The cross toolchain's own libraries (libm, libpthread...) live under /usr/<triplet>: searched
# first, re-rooted, so that find_library(m) gets the target's libm and not the build host's;
# then the usual paths, where /opt (CMAKE_PREFIX_PATH) holds the stack.
set(CMAKE_FIND_ROOT_PATH "/usr/$ENV{CROSS}")
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
# Programs (the build's own generators, sqlite3 for PROJ) come from the build host's PATH.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
# try_run() checks (HDF5's type probes) run the target's binaries: the host's binfmt_misc hands
# them to QEMU, so any launcher will do; env keeps the command as it is.
set(CMAKE_CROSSCOMPILING_EMULATOR /usr/bin/env)
