#!/usr/bin/env bash
# Print, one a line, the distribution packages that own the shared libraries needed by the
# ELF files under DIR and found outside it. A final image installs exactly these, so the
# runtime package names never have to be listed by hand (they carry soname versions that
# change between releases: libcurl4 vs libcurl4t64, libhdf5-103 vs libhdf5-310...).
#
# usage: runtime-packages.sh DIR
set -euo pipefail

dir=${1:?usage: runtime-packages.sh DIR}

owner() {
    # dpkg records the path the package shipped, which may be the /usr-merged or the
    # unmerged spelling of the same file: try both.
    local path=$1 alt
    if command -v dpkg-query >/dev/null 2>&1; then
        alt=${path#/usr}
        dpkg-query -S "$path" 2>/dev/null || dpkg-query -S "$alt" 2>/dev/null || dpkg-query -S "/usr$alt" 2>/dev/null || true
    else
        rpm -qf --queryformat '%{NAME}: \n' "$path" 2>/dev/null || true
    fi
}

find "$dir" -type f -print0 |
    while IFS= read -r -d '' file; do
        # Only ELF files: test the magic bytes rather than trust names.
        [[ $(head -c 4 "$file" | od -An -c | tr -d ' ') == 177ELF ]] || continue
        ldd "$file" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $3}'
    done |
    sort -u |
    while IFS= read -r lib; do
        [[ $lib == "$dir"/* ]] && continue
        real=$(readlink -f "$lib")
        owner "$lib"
        [[ $real != "$lib" ]] && owner "$real"
    done |
    awk -F: 'NF > 1 {print $1}' | sort -u
