#!/usr/bin/env bash
# Install the packages a build stage needs with whatever package manager the base image has.
# The names live in scripts/packages/<manager>-<set>.txt, one a line, '#' for comments, so a new
# target is a new list, not new code.
#
# usage: install-packages.sh SET          install scripts/packages/<manager>-SET.txt
#        install-packages.sh - NAME...    install the named packages (used for the runtime
#                                         packages an image build computed)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if command -v apt-get >/dev/null 2>&1; then
    manager=apt
elif command -v dnf >/dev/null 2>&1; then
    manager=dnf
elif command -v microdnf >/dev/null 2>&1; then
    manager=microdnf
else
    echo "error: no apt-get, dnf or microdnf in this image; add a package list for its manager" >&2
    exit 1
fi

# The `python` set adds the headers and venv of the distribution's python3. An image whose
# python3 is a CPython in /var/lang (Lambda's Python images, the floor stand-in) has its own
# headers in /var/lang/include and its own venv; Debian's python3-dev would install a second
# interpreter (bullseye's 3.9) and headers that do not match the one that builds the packages.
if [[ ${1:-} == python && -x /var/lang/bin/python3 ]]; then
    echo "install-packages.sh: python set skipped, python3 is /var/lang's (it has its headers)"
    exit 0
fi

if [[ ${1:-} == - ]]; then
    shift
    packages=("$@")
else
    set_name=${1:?usage: install-packages.sh SET | - NAME...}
    # microdnf reads the same names as dnf.
    list=$here/packages/${manager/microdnf/dnf}-$set_name.txt
    if [[ ! -f $list ]]; then
        echo "error: no package list $list for this base image" >&2
        exit 1
    fi
    mapfile -t packages < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$list")
fi
if [[ ${#packages[@]} -eq 0 ]]; then
    exit 0
fi

case $manager in
apt)
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
    rm -rf /var/lib/apt/lists/*
    ;;
dnf | microdnf)
    "$manager" install -y "${packages[@]}"
    "$manager" clean all
    ;;
esac

# The build set also needs a CMake new enough for every stack library (the first line of
# cmake.lock's comment says why). An older one is replaced by the hash-locked PyPI wheel,
# installed for the image's python3 (its console script comes first on PATH: /var/lang/bin on
# Lambda-shaped images, /usr/local/bin elsewhere).
min_cmake=3.20
if [[ ${1:-} == build ]]; then
    have=$(cmake --version | sed -n 's/^cmake version \([0-9.]*\).*/\1/p')
    if [[ $(printf '%s\n%s\n' "$min_cmake" "$have" | sort -V | head -1) != "$min_cmake" ]]; then
        echo "install-packages.sh: CMake $have is older than $min_cmake; installing cmake.lock's"
        # A base without any python3 (the floor's GDAL base: its CPython is in each Python's own
        # stand-in) gets the distribution's, in this build stage only.
        if ! command -v python3 >/dev/null 2>&1; then
            "$0" - python3 python3-pip
        fi
        python3 -m pip install --no-cache-dir --require-hashes --no-deps -r "$here/packages/cmake.lock"
        hash -r
        cmake --version | head -1
    fi
fi
