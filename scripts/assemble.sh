#!/usr/bin/env bash
# Assemble a deployable tree (a layer's /opt, or a function package's /var/task) inside the
# image that built it. Runs in a container; gdal_lambda.layer collects OUT afterwards.
#
# usage: assemble.sh SRC OUT [BIN_KEEP]
#   SRC           the installed tree (/opt for a layer, a staged /var/task for a package)
#   OUT           where to write the slim tree (created; must not exist)
#   BIN_KEEP      file of bin/ glob patterns to keep (default: scripts/bin-keep.txt)
#   PYTHON_DIR    (environment) where Python packages live below OUT: "python" in a layer
#                 (the default), "." in a function package
#
# It: copies SRC; drops what Lambda never uses (headers, static libraries, pkg-config and CMake
# files, docs, tests, caches); strips native files except those a wheel's tooling already
# patched. Which of the runtime's own distributions (the AWS SDK in /var/runtime) the tree may
# leave out is decided afterwards, in Python, from the tree's metadata
# (gdal_lambda.runtime_sdk). Which libraries the tree must carry is not decided here:
# everything outside the target's Lambda policy is already in /opt/lib (compiled from pinned
# sources), and gdal_lambda.policy checks the collected tree and gives those libraries unique
# names.
set -euo pipefail

src=${1:?usage: assemble.sh SRC OUT [BIN_KEEP]}
out=${2:?usage: assemble.sh SRC OUT [BIN_KEEP]}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bin_keep=${3:-$here/bin-keep.txt}
pydir=${PYTHON_DIR:-python}

if [[ -e $out ]]; then
    echo "error: $out exists" >&2
    exit 1
fi
mkdir -p "$out"
cp -a "$src/." "$out/"

# --- slim -------------------------------------------------------------------------------------
rm -rf "$out/include" "$out/lib/pkgconfig" "$out/lib/cmake" "$out/cmake" "$out/share/man" \
    "$out/share/doc" "$out/share/info" "$out/share/bash-completion"
# Build-time summaries some libraries install beside themselves (HDF5, netCDF).
rm -f "$out"/lib/*.settings
find "$out" \( -name '*.a' -o -name '*.la' -o -name '*.pyc' -o -name '*.pyo' \) -type f -delete
find "$out" -depth -type d -name __pycache__ -exec rm -rf {} +
site=$out/$pydir
if [[ -d $site ]]; then
    # Test suites shipped inside packages (numpy/_core/tests, ...): never imported at run time;
    # numpy's _simd module exists only for those tests (1.5 MB).
    find "$site" -mindepth 2 -depth -type d -name tests -exec rm -rf {} +
    rm -f "$site"/numpy/_core/_simd.*.so
    # GDAL's sample scripts (1.7 MB): examples, not its utilities; no module imports them
    # (osgeo_utils' gdal_calc, gdal2tiles, ogrmerge... stay).
    rm -rf "$site/osgeo_utils/samples"
    # Sources that sdists install next to their compiled modules (rasterio ships ~20 MB of
    # Cython-generated C), C headers, and typing stubs (.pyi, 1.5 MB): only compilers and
    # type checkers read them.
    find "$site" -mindepth 2 -type f \( -name '*.c' -o -name '*.cpp' -o -name '*.pyx' \
        -o -name '*.pxd' -o -name '*.pxi' -o -name '*.h' -o -name '*.hpp' -o -name '*.pyi' \) \
        -delete
    find "$site" -mindepth 1 -depth -type d -empty -delete
fi

# Console scripts pip wrote for a layer's python/ point at a build-time interpreter. In a
# package (PYTHON_DIR=.) they share bin/ with the GDAL tools, and BIN_KEEP filters them below.
if [[ $pydir != . ]]; then
    rm -rf "${site:?}/bin"
fi

# bin/: only the tools users call (scripts/bin-keep.txt); config scripts and the rest go.
if [[ -d $out/bin ]]; then
    mapfile -t keep < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$bin_keep")
    for file in "$out"/bin/*; do
        name=$(basename "$file")
        wanted=no
        for pattern in "${keep[@]}"; do
            # shellcheck disable=SC2053 # the pattern is a glob on purpose
            if [[ $name == $pattern ]]; then
                wanted=yes
                break
            fi
        done
        [[ $wanted == yes ]] || rm -f "$file"
    done
    # Build-time helpers (gdal-config, geos-config...) even where a pattern matched them.
    rm -f "$out"/bin/*-config
fi

# --- bytecode ---------------------------------------------------------------------------------
# /opt and /var/task are read-only on Lambda: without shipped .pyc files every cold start
# compiles each module it imports again (measured: `import rasterio` 549 -> 272 ms, for ~9 MB).
# The runtime's own interpreter compiles them; unchecked-hash .pyc files carry no timestamps and
# are never re-validated (a zip is immutable); a fixed hash seed keeps set constants in order.
if [[ -d $site ]] && command -v python3 >/dev/null; then
    PYTHONHASHSEED=0 python3 -m compileall -q -j0 --invalidation-mode unchecked-hash "$site" \
        >/dev/null || echo "warning: some modules could not be compiled to bytecode" >&2
fi

is_elf() { [[ -f $1 && ! -L $1 && $(head -c 4 "$1" | od -An -c | tr -d ' ') == 177ELF ]]; }

# --- strip ------------------------------------------------------------------------------------
# Files installed from manylinux/musllinux wheels were rewritten by auditwheel (patchelf):
# stripping them again can corrupt them, so they, and their *.libs/ directories, are skipped.
patched=$(mktemp)
for wheel in "$site"/*.dist-info/WHEEL; do
    [[ -f $wheel ]] || continue
    if grep -qE '^Tag: .*(manylinux|musllinux)' "$wheel"; then
        cut -d, -f1 "$(dirname "$wheel")/RECORD" | sed "s|^|$site/|" >>"$patched"
    fi
done
find "$out" -type f -print0 | while IFS= read -r -d '' file; do
    is_elf "$file" || continue
    [[ $file == *.libs/* ]] && continue
    grep -qxF "$file" "$patched" && continue
    strip --strip-unneeded "$file" 2>/dev/null || echo "warning: could not strip ${file#"$out"/}" >&2
done
rm -f "$patched"
