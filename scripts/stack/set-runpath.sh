#!/usr/bin/env bash
# set-runpath.sh PREFIX [NEWER_THAN]: give every ELF file under PREFIX/bin and PREFIX/lib, at any
# depth (OpenSSL's lib/ossl-modules/ and lib/engines-3/ included), a RUNPATH pointing at
# PREFIX/lib relative to itself ($ORIGIN/../lib from bin/, $ORIGIN from lib/, $ORIGIN/.. from
# lib/ossl-modules/), so that it finds its siblings without LD_LIBRARY_PATH and before any copy
# the system has. With NEWER_THAN, only files modified after that file.
set -euo pipefail

prefix=${1:?usage: set-runpath.sh PREFIX [NEWER_THAN]}
newer=()
[[ -n ${2:-} ]] && newer=(-newer "$2")

for dir in bin lib; do
    [[ -d $prefix/$dir ]] || continue
    find "$prefix/$dir" -type f "${newer[@]}" -print0 |
        while IFS= read -r -d '' file; do
            [[ $(head -c 4 "$file" | od -An -c | tr -d ' ') == 177ELF ]] || continue
            rel=$(realpath --relative-to="$(dirname "$file")" "$prefix/lib")
            # shellcheck disable=SC2016 # $ORIGIN is for the dynamic loader, not the shell
            if [[ $rel == . ]]; then runpath='$ORIGIN'; else runpath="\$ORIGIN/$rel"; fi
            patchelf --set-rpath "$runpath" "$file"
        done
done
