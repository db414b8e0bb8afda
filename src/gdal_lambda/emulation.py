"""Can this host run a variant's architecture, and how to make it able to.

An arm64 image runs natively on an arm64 host. On an x86_64 host it runs under QEMU's user-mode
emulation, which the kernel starts through binfmt_misc for every aarch64 ELF file: Debian's
``qemu-user-static`` ships the registration (``/usr/lib/binfmt.d/qemu-aarch64.conf``, with the
``F`` flag, so the interpreter is opened once at registration and works inside containers too).
``scripts/enable-emulation.sh`` mounts binfmt_misc, installs the package and registers it.

    check_runnable(variant.architecture)   # one clear error naming the two commands, or nothing
"""

from __future__ import annotations

import platform
from pathlib import Path

from .errors import GdalLambdaError
from .versions import Architecture

BINFMT = Path("/proc/sys/fs/binfmt_misc")
# platform.machine() -> Lambda's architecture names
_HOST_NAMES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}


def host_architecture() -> str:
    """This machine's architecture, by Lambda's names (x86_64, arm64)."""
    machine = platform.machine().lower()
    return _HOST_NAMES.get(machine, machine)


def registered(architecture: Architecture, binfmt: Path | None = None) -> bool:
    """Is ``qemu-<arch>`` registered and enabled in binfmt_misc?"""
    entry = (binfmt if binfmt is not None else BINFMT) / f"qemu-{architecture.qemu}"
    try:
        return entry.read_text(encoding="utf-8").splitlines()[0].strip() == "enabled"
    except (OSError, IndexError):
        return False


def enable_command(architecture: Architecture) -> str:
    return f"sudo bash scripts/enable-emulation.sh {architecture.qemu}"


def check_runnable(
    architecture: Architecture, *, host: str | None = None, binfmt: Path | None = None
) -> None:
    """Raise one error, with the commands that fix it, unless this host can run the arch."""
    host = host if host is not None else host_architecture()
    binfmt = binfmt if binfmt is not None else BINFMT
    if host == architecture.name or registered(architecture, binfmt):
        return
    raise GdalLambdaError(
        f"{architecture.name} containers cannot run on this {host} host: no qemu-"
        f"{architecture.qemu} is registered in binfmt_misc ({binfmt}). Register it with "
        f"`{enable_command(architecture)}` (as root: mount -t binfmt_misc binfmt_misc {binfmt}; "
        "apt-get install qemu-user-static), or build on an "
        f"{architecture.name} host"
    )
