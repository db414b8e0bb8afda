#!/usr/bin/env bash
# Make a local stand-in for a Lambda base image: a Debian root file system built with
# debootstrap and loaded with `docker import`. It is laid out like the Lambda images
# (/var/task for the function, /opt for layers) and carries this host's CA bundle and pip
# settings, so that builds FROM it work behind a TLS-intercepting proxy. The real
# Dockerfiles never mention certificates: only the stand-in does.
#
# usage: make-standin.sh SUITE IMAGE_TAG [MIRROR]
#   SUITE      a Debian suite known to debootstrap (bookworm, trixie, ...)
#   IMAGE_TAG  the tag to give the imported image (e.g. gdal-lambda-standin:debian13)
#   MIRROR     Debian mirror (default http://deb.debian.org/debian)
set -euo pipefail

if [[ $# -lt 2 ]]; then
    echo "usage: $0 SUITE IMAGE_TAG [MIRROR]" >&2
    exit 2
fi
suite=$1
tag=$2
mirror=${3:-http://deb.debian.org/debian}
ca_bundle=${STANDIN_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

for tool in debootstrap docker tar; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "error: '$tool' is not installed; on Debian run: apt-get install -y debootstrap docker.io" >&2
        exit 1
    fi
done
if [[ $(id -u) -ne 0 ]]; then
    echo "error: debootstrap needs root; run this script as root (or through sudo)" >&2
    exit 1
fi
if [[ ! -r $ca_bundle ]]; then
    echo "error: CA bundle '$ca_bundle' is not readable; set STANDIN_CA_BUNDLE to the host's bundle" >&2
    exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/standin.XXXXXX")
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
root=$work/rootfs

# minbase keeps the image close to a Lambda runtime: no compilers, just the interpreter,
# pip and TLS roots. python3-pip mirrors the Lambda Python images, which ship pip.
debootstrap --variant=minbase --include=python3,python3-pip,ca-certificates \
    "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
    tail -n 20 "$work/debootstrap.log" >&2
    echo "error: debootstrap of '$suite' from $mirror failed (log above)" >&2
    exit 1
}

# Lambda's layout: the function lives in /var/task, layers are unpacked at /opt.
mkdir -p "$root/var/task" "$root/opt"

# The host CA bundle lives beside the distribution's, under its own name, so that a later
# `update-ca-certificates` inside a build cannot drop the proxy's root.
install -m 0644 "$ca_bundle" "$root/etc/ssl/certs/host-ca-bundle.crt"

# pip settings: trust the host bundle, and allow installing into the system interpreter
# as the Lambda images do (Debian marks it externally managed).
cat >"$root/etc/pip.conf" <<PIPCONF
[global]
cert = /etc/ssl/certs/host-ca-bundle.crt
break-system-packages = true
disable-pip-version-check = true
root-user-action = ignore
PIPCONF

# Keep the image small: apt lists and caches are fetched again by any build that needs them.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb

bundle=/etc/ssl/certs/host-ca-bundle.crt
tar -C "$root" --numeric-owner -c . | docker import \
    --change "ENV SSL_CERT_FILE=$bundle" \
    --change "ENV REQUESTS_CA_BUNDLE=$bundle" \
    --change "ENV CURL_CA_BUNDLE=$bundle" \
    --change "ENV PIP_CERT=$bundle" \
    --change "ENV LANG=C.UTF-8" \
    --change "WORKDIR /var/task" \
    --change 'CMD ["/bin/bash"]' \
    - "$tag" >/dev/null
echo "made stand-in $tag from Debian $suite"
