#!/usr/bin/env bash
# set-runpath.sh PREFIX [NEWER_THAN]: give every ELF file under PREFIX/bin and PREFIX/lib a
# RUNPATH of $ORIGIN/../lib or $ORIGIN, so that it finds its siblings in PREFIX/lib without
# LD_LIBRARY_PATH. With NEWER_THAN, only files modified after that file.
set -euo pipefail

prefix=${1:?usage: set-runpath.sh PREFIX [NEWER_THAN]}
newer=()
[[ -n ${2:-} ]] && newer=(-newer "$2")

for dir in bin lib; do
    [[ -d $prefix/$dir ]] || continue
    # shellcheck disable=SC2016 # $ORIGIN is for the dynamic loader, not the shell
    if [[ $dir == bin ]]; then runpath='$ORIGIN/../lib'; else runpath='$ORIGIN'; fi
    find "$prefix/$dir" -maxdepth 1 -type f "${newer[@]}" -print0 |
        while IFS= read -r -d '' file; do
            [[ $(head -c 4 "$file" | od -An -c | tr -d ' ') == 177ELF ]] || continue
            patchelf --set-rpath "$runpath" "$file"
        done
done
