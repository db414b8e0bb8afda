#!/usr/bin/env bash
# Make a local stand-in for a Lambda base image: a Debian root file system built with
# debootstrap and built into an image FROM scratch. It is laid out like the Lambda images
# (/var/task for the function, /opt for layers) and carries this host's CA bundle and pip
# settings, so that builds FROM it work behind a TLS-intercepting proxy. The real
# Dockerfiles never mention certificates: only the stand-in does.
#
# With --python, the stand-in is shaped like Lambda's Python images instead: no Debian python3,
# but CPython compiled from the given (already verified) source tarball into /var/lang, in a
# throw-away builder container that has the compiler and -dev packages; the stand-in itself gets
# /var/lang and the matching runtime libraries only (scripts/standin/<suite>-runtime.txt), plus
# /var/runtime and the python3.x runtime's environment.
#
# With --arch, the root file system is another architecture's (debootstrap --arch arm64), its
# second stage and every later command run under QEMU's emulation (scripts/enable-emulation.sh
# registers it), and the image is marked with that platform. `docker import` cannot mark it on
# every daemon (Debian's 20.10 ignores --platform there), so the image is built instead: FROM
# scratch, ADD the root file system, at --platform.
#
# The image is built under a temporary tag, checked (its Python imports ssl, sqlite3...; no
# compiler in a --python stand-in), and only then given IMAGE_TAG: a failure leaves no tag.
#
# usage: make-standin.sh [--arch DEBARCH] [--python TARBALL] [--ld-library-path DIRS] SUITE IMAGE_TAG [MIRROR]
#   --arch DEBARCH          Debian architecture (amd64, arm64; default: this host's)
#   --python TARBALL        CPython source tarball (Python-X.Y.Z.tar.xz), verified by the caller
#   --ld-library-path DIRS  LD_LIBRARY_PATH baked into the image (colon-separated)
#   SUITE                   a Debian suite known to debootstrap (bullseye, bookworm, trixie...)
#   IMAGE_TAG               the tag to give the imported image (e.g. gdal-lambda-standin:debian13)
#   MIRROR                  Debian mirror (default http://deb.debian.org/debian)
set -euo pipefail

usage() {
    echo "usage: $0 [--arch DEBARCH] [--python TARBALL] [--ld-library-path DIRS] SUITE IMAGE_TAG [MIRROR]" >&2
    exit 2
}

python_src=
ld_library_path=
debarch=
while [[ $# -gt 0 && $1 == --* ]]; do
    case $1 in
    --arch) [[ $# -ge 2 ]] || usage; debarch=$2; shift 2 ;;
    --python) [[ $# -ge 2 ]] || usage; python_src=$2; shift 2 ;;
    --ld-library-path) [[ $# -ge 2 ]] || usage; ld_library_path=$2; shift 2 ;;
    *) usage ;;
    esac
done
[[ $# -ge 2 ]] || usage
suite=$1
tag=$2
mirror=${3:-http://deb.debian.org/debian}
ca_bundle=${STANDIN_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
case ${debarch:=$(dpkg --print-architecture)} in
amd64) platform=linux/amd64 ;;
arm64) platform=linux/arm64 ;;
*)
    echo "error: unknown --arch '$debarch': known ones are amd64, arm64" >&2
    exit 2
    ;;
esac
# The classic builder: `FROM scratch` at --platform marks the image's architecture on every
# daemon version; docker's CLI would otherwise ask for buildx, which Debian's docker.io lacks.
export DOCKER_BUILDKIT=0

for tool in debootstrap docker tar; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "error: '$tool' is not installed; on Debian run: apt-get install -y debootstrap docker.io" >&2
        exit 1
    fi
done
if [[ ! -e ${DEBOOTSTRAP_DIR:-/usr/share/debootstrap}/scripts/$suite ]]; then
    echo "error: debootstrap does not know the suite '$suite' (see ${DEBOOTSTRAP_DIR:-/usr/share/debootstrap}/scripts)" >&2
    exit 1
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "error: debootstrap needs root; run this script as root (or through sudo)" >&2
    exit 1
fi
if [[ ! -r $ca_bundle ]]; then
    echo "error: CA bundle '$ca_bundle' is not readable; set STANDIN_CA_BUNDLE to the host's bundle" >&2
    exit 1
fi
# The stand-in's packages: Debian's python3 and pip, or (--python) the runtime libraries of a
# CPython in /var/lang, listed per suite (their names change between releases).
if [[ -n $python_src ]]; then
    if [[ ! -r $python_src ]]; then
        echo "error: CPython source '$python_src' is not readable" >&2
        exit 1
    fi
    lists=("$here/standin/$suite-runtime.txt" "$here/standin/$suite-build.txt")
    for list in "${lists[@]}"; do
        if [[ ! -r $list ]]; then
            echo "error: no package list $list: a /var/lang CPython on '$suite' needs one" >&2
            exit 1
        fi
    done
    include=$(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "${lists[0]}" | paste -sd,)
    mapfile -t build_packages < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "${lists[1]}")
else
    # python3-pip mirrors the Lambda Python images, which ship pip.
    include=python3,python3-pip,ca-certificates
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/standin.XXXXXX")
# Temporary tags: the builder's image and the stand-in before it passes its checks.
scratch=gdal-lambda-standin-scratch:$(basename "$work")
cleanup() {
    docker image rm -f "$scratch-builder" "$scratch" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
root=$work/rootfs

# minbase keeps the image close to a Lambda runtime: no compilers, just the interpreter (or its
# libraries), pip and TLS roots.
# Another architecture's second stage runs its binaries in the chroot: under emulation.
debootstrap --arch="$debarch" --variant=minbase --include="$include" \
    "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
    tail -n 20 "$work/debootstrap.log" >&2
    echo "error: debootstrap of '$suite' ($debarch) from $mirror failed (log above)" >&2
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
# The image's configuration, as Dockerfile lines after `FROM scratch` and `ADD rootfs.tar /`.
changes=(
    "ENV SSL_CERT_FILE=$bundle"
    "ENV REQUESTS_CA_BUNDLE=$bundle"
    "ENV CURL_CA_BUNDLE=$bundle"
    "ENV PIP_CERT=$bundle"
    # Lambda sets LANG=en_US.UTF-8; a minbase Debian has no such locale, but C.UTF-8 is built in.
    "ENV LANG=C.UTF-8"
)
if [[ -n $ld_library_path ]]; then
    changes+=("ENV LD_LIBRARY_PATH=$ld_library_path")
fi

# image_of TAG [LINE...]: build TAG from $root at $platform, with the given Dockerfile lines.
image_of() {
    local tag=$1 ctx
    shift
    ctx=$(mktemp -d "$work/image.XXXXXX")
    tar -C "$root" --numeric-owner -cf "$ctx/rootfs.tar" .
    printf '%s\n' "FROM scratch" "ADD rootfs.tar /" "$@" >"$ctx/Dockerfile"
    docker build -q --platform "$platform" -t "$tag" "$ctx" >/dev/null
    rm -rf "$ctx"
}

if [[ -n $python_src ]]; then
    # The builder: this same root file system plus the compiler and -dev packages, used once and
    # removed. CPython goes to /var/lang as in Lambda's images, shared (libpython in
    # /var/lang/lib), without PGO/LTO (a quick build), without its test suite, stripped of
    # debug information. Its own RUNPATH (LDFLAGS_NODIST: not handed on to extension modules
    # built later through sysconfig) lets python3 start without LD_LIBRARY_PATH too.
    image_of "$scratch-builder"
    mkdir -p "$work/out"
    started=$SECONDS
    docker run --rm --platform "$platform" \
        -v "$(realpath "$python_src"):/src/python.tar.xz:ro" -v "$work/out:/out" \
        -e SSL_CERT_FILE=$bundle \
        "$scratch-builder" bash -c '
            set -euo pipefail
            export DEBIAN_FRONTEND=noninteractive
            apt-get update -qq
            apt-get install -y -qq --no-install-recommends "$@" >/dev/null
            mkdir /build && tar -C /build --strip-components=1 -xf /src/python.tar.xz
            cd /build
            ./configure --prefix=/var/lang --enable-shared --without-static-libpython \
                --disable-test-modules --with-ensurepip=install \
                LDFLAGS_NODIST=-Wl,-rpath=/var/lang/lib >/tmp/configure.log 2>&1 \
                || { tail -n 30 /tmp/configure.log; exit 1; }
            make -j"$(nproc)" >/tmp/make.log 2>&1 || { tail -n 40 /tmp/make.log; exit 1; }
            grep -A3 "necessary bits to build these optional modules" /tmp/make.log || true
            make install DESTDIR=/out >/tmp/install.log 2>&1 \
                || { tail -n 40 /tmp/install.log; exit 1; }
            # Debug information is most of libpython and lib-dynload (-g is a CPython default).
            find /out/var/lang/lib -type f -name "*.so*" -exec strip --strip-debug {} +
            find /out/var/lang/bin -type f -name "python3.*[0-9]" -exec strip --strip-debug {} +
        ' builder "${build_packages[@]}" >"$work/builder.log" 2>&1 || {
        tail -n 40 "$work/builder.log" >&2
        echo "error: compiling CPython from $python_src in the $suite builder failed (log above)" >&2
        exit 1
    }
    cat "$work/builder.log"
    echo "compiled CPython into /var/lang in $((SECONDS - started)) s"
    cp -a "$work/out/var/lang" "$root/var/lang"
    # The names Lambda's images have: python, python3, python3.X, pip, pip3 in /var/lang/bin.
    ln -sf python3 "$root/var/lang/bin/python"
    ln -sf pip3 "$root/var/lang/bin/pip"
    mkdir -p "$root/var/runtime/lib"
    # The python3.x runtime's environment (Lambda's python images set these).
    changes+=(
        "ENV PATH=/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin"
        "ENV LAMBDA_TASK_ROOT=/var/task"
        "ENV LAMBDA_RUNTIME_DIR=/var/runtime"
        "ENV TZ=:/etc/localtime"
    )
fi

image_of "$scratch" "${changes[@]}" "WORKDIR /var/task" 'CMD ["/bin/bash"]'

# The checks before the tag: the standard library's C extensions load against the runtime's
# libraries, and a --python stand-in has neither a compiler nor a -dev package.
check='import ssl, sqlite3, ctypes, lzma, bz2, zlib, uuid, json'
check_sh="python3 -c '$check' && python3 -m pip --version >/dev/null"
if [[ -n $python_src ]]; then
    check_sh+=" && [ \"\$(command -v python3)\" = /var/lang/bin/python3 ]"
    check_sh+=" && ! command -v gcc && ! command -v cc"
    check_sh+=" && ! dpkg-query -W -f '\${Package}\n' | grep -e '-dev\$'"
fi
if ! docker run --rm --platform "$platform" "$scratch" sh -c "$check_sh" >"$work/check.log" 2>&1; then
    cat "$work/check.log" >&2
    echo "error: the stand-in for '$suite' failed its checks ($check_sh); no image was tagged" >&2
    exit 1
fi

docker tag "$scratch" "$tag"
echo "made stand-in $tag ($platform) from Debian $suite${python_src:+ with CPython in /var/lang}"
