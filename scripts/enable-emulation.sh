#!/usr/bin/env bash
# Let this host run containers of another architecture under QEMU's user-mode emulation.
#
# usage: enable-emulation.sh CPU      (CPU: QEMU's name for it, matrix.toml [architectures]'s
#                                      `qemu`: aarch64 for arm64, x86_64)
#
# As root: mount binfmt_misc if it is not, install Debian's qemu-user-static if it is missing, and
# register its binfmt_misc entry for CPU from /usr/lib/binfmt.d/qemu-<cpu>.conf. The entry
# carries the F flag: the kernel opens the static interpreter at registration, so it works inside
# containers whose file systems have no QEMU. Installing the package registers nothing where
# systemd-binfmt or binfmt-support does not run (a container, a CI machine without systemd),
# hence the explicit write. Does nothing when the entry is already enabled or CPU is the host's.
# Which architectures exist is matrix.toml's to say: gdal_lambda checks --arch against it and
# passes the name in.
set -euo pipefail

cpu=${1:?usage: enable-emulation.sh CPU (QEMU name: aarch64, x86_64)}

if [[ $(uname -m) == "$cpu" ]]; then
    echo "$cpu is this host's own architecture: nothing to register"
    exit 0
fi
binfmt=/proc/sys/fs/binfmt_misc
entry=$binfmt/qemu-$cpu
if [[ -e $entry ]] && [[ $(head -n 1 "$entry") == enabled ]]; then
    echo "qemu-$cpu is already registered"
    exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "error: registering an emulator needs root: run sudo bash $0 $cpu" >&2
    exit 1
fi
if [[ ! -e $binfmt/register ]]; then
    mount -t binfmt_misc binfmt_misc "$binfmt"
fi

conf=/usr/lib/binfmt.d/qemu-$cpu.conf
if [[ ! -r $conf ]]; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "error: $conf is missing and this is not a Debian-family host: install QEMU's static user-mode emulators" >&2
        exit 1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-user-static >/dev/null
fi
if [[ ! -r $conf ]]; then
    echo "error: qemu-user-static has no emulator for '$cpu' ($conf)" >&2
    exit 2
fi
# A stale, disabled entry of the same name would make the write fail: remove it first.
if [[ -e $entry ]]; then
    echo -1 >"$entry"
fi
cat "$conf" >"$binfmt/register"
if [[ $(head -n 1 "$entry") != enabled ]]; then
    echo "error: qemu-$cpu did not register (see $entry)" >&2
    exit 1
fi
echo "registered qemu-$cpu: $cpu containers run on this $(uname -m) host under emulation"
