#!/usr/bin/env bash
# Build one library: build.sh NAME runs the recipe /tmp/src/NAME.sh (scripts/stack/NAME.sh) in a
# fresh directory on /tmp/src/NAME.tar (verified on the host before the build), then removes the
# sources, static archives and libtool files, and points every new ELF file's RUNPATH at /opt/lib
# ($ORIGIN-relative, so the tree works wherever it is unpacked and finds its own copies before
# any the system has).
set -euo pipefail

name=${1:?usage: build.sh NAME}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$here/common.sh"

stamp=$(mktemp)
work=$(mktemp -d /tmp/build.XXXXXX)
cd "$work"
unpack "$name"
# A Debian +dfsg repack can lack files the build installs (GDAL's ECW/CubeWerx CRS tables):
# /tmp/src/NAME.missing lists them when the tarball came from such a mirror, and empty
# placeholders let the install go through.
while IFS= read -r missing; do
    [[ -z $missing || -e $missing ]] && continue
    echo "placeholder for $missing (absent from this mirror's tarball)"
    mkdir -p "$(dirname "$missing")"
    : >"$missing"
done <"/tmp/src/$name.missing"
# shellcheck source=/dev/null
source "/tmp/src/$name.sh"
cd /
rm -rf "$work" /tmp/src/"$name".*

find "$PREFIX/lib" -maxdepth 1 \( -name '*.a' -o -name '*.la' \) -delete
"$here/set-runpath.sh" "$PREFIX" "$stamp"
rm -f "$stamp"
echo "built $name into $PREFIX"
