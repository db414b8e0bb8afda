#!/usr/bin/env bash
# The debootstrap route of `invoke build.standin`, for machines without a registry: a minimal
# Debian root file system made with debootstrap (which needs root) and built into an image FROM
# scratch. docker/standin/Dockerfile then builds the stand-in FROM it, exactly as it builds one
# FROM Docker Hub's digest-pinned image on the registry route.
#
# With --arch, the root file system is another architecture's (debootstrap --arch arm64); its
# second stage runs under QEMU's emulation (scripts/enable-emulation.sh registers it), and the
# image is marked with that platform. `docker import` cannot mark it on every daemon (Debian's
# 20.10 ignores --platform there), so the image is built instead: FROM scratch, ADD the root file
# system, at --platform. The image is tagged only once it is complete: a failure leaves no tag.
#
# usage: make-standin.sh --arch DEBARCH --platform PLATFORM SUITE IMAGE_TAG [MIRROR]
#   --arch DEBARCH          debootstrap's --arch (matrix.toml [architectures]'s `debian`)
#   --platform PLATFORM     the image's Docker platform (its `docker_platform`)
#   SUITE                   a Debian suite known to debootstrap (bullseye, bookworm, trixie...)
#   IMAGE_TAG               the tag to give the root image (e.g. gdal-lambda-standin-root:bullseye)
#   MIRROR                  Debian mirror (default http://deb.debian.org/debian)
# gdal_lambda.standin checks first that debootstrap, docker and tar are there, that debootstrap
# knows the suite and that this runs as root, and passes the architecture's names in.
set -euo pipefail

usage() {
    echo "usage: $0 --arch DEBARCH --platform PLATFORM SUITE IMAGE_TAG [MIRROR]" >&2
    exit 2
}

debarch=
platform=
while [[ $# -gt 0 && $1 == --* ]]; do
    case $1 in
    --arch) [[ $# -ge 2 ]] || usage; debarch=$2; shift 2 ;;
    --platform) [[ $# -ge 2 ]] || usage; platform=$2; shift 2 ;;
    *) usage ;;
    esac
done
[[ $# -ge 2 && -n $debarch && -n $platform ]] || usage
suite=$1
tag=$2
mirror=${3:-http://deb.debian.org/debian}
# The classic builder: `FROM scratch` at --platform marks the image's architecture on every
# daemon version; docker's CLI would otherwise ask for buildx, which Debian's docker.io lacks.
export DOCKER_BUILDKIT=0

work=$(mktemp -d "${TMPDIR:-/tmp}/standin.XXXXXX")
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
root=$work/rootfs

# minbase: apt and dpkg, no compilers, no interpreter; the Dockerfile adds what a stand-in has.
# Another architecture's second stage runs its binaries in the chroot: under emulation.
debootstrap --arch="$debarch" --variant=minbase "$suite" "$root" "$mirror" \
    >"$work/debootstrap.log" 2>&1 || {
    tail -n 20 "$work/debootstrap.log" >&2
    echo "error: debootstrap of '$suite' ($debarch) from $mirror failed (log above)" >&2
    exit 1
}
# Small: apt lists and caches are fetched again by the build that needs them.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb

ctx=$work/image
mkdir "$ctx"
tar -C "$root" --numeric-owner -cf "$ctx/rootfs.tar" .
printf '%s\n' "FROM scratch" "ADD rootfs.tar /" 'CMD ["/bin/bash"]' >"$ctx/Dockerfile"
docker build -q --platform "$platform" -t "$tag" "$ctx" >/dev/null
echo "made root image $tag ($platform) from Debian $suite with debootstrap"
