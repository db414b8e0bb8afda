"""Hash-locked Python requirements: one lock per input file per target Python version.

The human-edited inputs stay the source of truth (``docker/python/requirements.txt``,
``layers/<recipe>/requirements.txt``). ``uv pip compile --generate-hashes`` turns each into
``<input folder>/locks/py<python>.txt``: every distribution, transitive ones included, pinned
with the sha256 of every file the index serves for that version (wheels and sdist), so pip's
``--require-hashes`` accepts nothing else. A lock's header records what it was made from (the
input's sha256, the Python version and platform, the overrides), so staleness is found offline.

A matrix overlay's ``requirement_overrides`` get their own locks, in a folder named by the
overrides (``locks/pyproj-3.6.1/py3.13.txt``); a package with ``build_constraints`` is built in
its own environment installed from ``locks/.../py3.13-build-<package>.txt``.

The layer manifest's Python entries come from pip's installation reports (``--report``): the
file each distribution was installed or built from and its sha256, checked against the lock.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import subprocess
import sys
import tarfile
import tempfile
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from . import naming
from .errors import GdalLambdaError
from .fsutil import atomic_write_text
from .project import project_root
from .versions import Matrix, load_matrix

INDEX_URL = "https://pypi.org/simple"
LOCK_DIR = "locks"
# The distributions Lambda's python runtimes carry in /var/runtime, as the stand-ins install them.
STANDIN_REQUIREMENTS = "docker/standin/requirements.txt"
COMMAND = "invoke lock"
# Overlays whose overrides get locks kept in the repository (CI's overlay).
KNOWN_OVERLAYS = ".ci"  # below the checkout: the overlays whose re-pins get locks too
# Where the layer recipe's Dockerfile leaves pip's installation reports (see layers/*/Dockerfile).
REPORT_DIR = "/usr/local/lib/gdal-lambda/layer/reports"
_HEADER = "# gdal-lambda lock"
_FIELD = re.compile(r"^# (input|python|platform|overrides|constraints): (.*)$")
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")
_HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")


# ------------------------------------------------------------------------------------------------
# What is locked


def inputs(root: Path | None = None) -> list[Path]:
    """The Python image's requirements, every layer recipe's, the function image's runtime
    interface client (docker/function), then the AWS SDK the Python stand-ins carry in
    /var/runtime as Lambda's python runtimes do (docker/standin)."""
    root = root if root is not None else project_root()
    found = [root / "docker" / "python" / "requirements.txt"]
    found += sorted((root / "layers").glob("*/requirements.txt"))
    found.append(root / "docker" / "function" / "requirements.txt")
    found.append(root / STANDIN_REQUIREMENTS)
    return [path for path in found if path.is_file()]


def platforms(matrix: Matrix) -> dict[str, str]:
    """Python version -> uv's platform for it: manylinux at the lowest glibc of the targets that
    offer that Python, so that every wheel the lock resolves installs on each of them."""
    floors: dict[str, tuple[int, int]] = {}
    for target in matrix.targets.values():
        major, minor = (int(part) for part in target.glibc.split(".")[:2])
        for python in target.pythons:
            floors[python] = min(floors.get(python, (major, minor)), (major, minor))
    return {
        python: f"x86_64-manylinux_{major}_{minor}"
        for python, (major, minor) in sorted(floors.items(), key=lambda i: _version(i[0]))
    }


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".") if part.isdigit())


def overrides_folder(overrides: Mapping[str, str]) -> str:
    """``pyproj-3.6.1[+name-version...]``: a lock folder named by what the overrides pin."""
    return "+".join(
        f"{naming.distribution_name(name)}-{version}" for name, version in sorted(overrides.items())
    )


@dataclass(frozen=True)
class LockSpec:
    """One lock: an input file resolved for one Python, with an overlay's overrides if any."""

    input: Path
    python: str
    platform: str
    overrides: tuple[tuple[str, str], ...] = ()
    # set for a build-environment lock: the package built, and its constraints
    build_for: str | None = None
    constraints: tuple[str, ...] = ()

    @property
    def folder(self) -> Path:
        base = self.input.parent / LOCK_DIR
        return base / overrides_folder(dict(self.overrides)) if self.overrides else base

    @property
    def path(self) -> Path:
        suffix = f"-build-{naming.distribution_name(self.build_for)}" if self.build_for else ""
        return self.folder / f"py{self.python}{suffix}.txt"

    def fields(self) -> dict[str, str]:
        """What the header records; a lock whose header differs from this is stale."""
        out = {
            "input": f"{_rel(self.input)} sha256={input_sha(self.input)}",
            "python": self.python,
            "platform": self.platform,
        }
        if self.overrides:
            out["overrides"] = " ".join(f"{n}=={v}" for n, v in self.overrides)
        if self.build_for:
            out["constraints"] = f"build of {self.build_for}: " + " ".join(self.constraints)
        return out


def _rel(path: Path) -> str:
    try:
        return path.resolve().relative_to(project_root()).as_posix()
    except ValueError:
        return str(path)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_INCLUDE = re.compile(r"^\s*(?:-r|--requirement)\s+(\S+)")


def input_sha(path: Path) -> str:
    """The sha256 of a requirements file; for one that includes others (``-r ../geo/...``, an
    extending recipe), of its bytes and each included file's own ``input_sha``, so a change to a
    base recipe's pins makes the extending recipe's locks stale too."""
    data = path.read_bytes()
    included = [
        path.parent / match.group(1)
        for match in map(_INCLUDE.match, data.decode("utf-8").splitlines())
        if match
    ]
    if not included:
        return _sha(data)
    return _sha(data + "".join(f"\n{input_sha(p)}" for p in included).encode())


def specs(
    matrix: Matrix, overrides: Mapping[str, str] | None = None, root: Path | None = None
) -> list[LockSpec]:
    """Every lock the matrix's targets need (for ``overrides``, the overlay's re-pins)."""
    pinned = tuple(sorted((overrides or {}).items()))
    return [
        LockSpec(input=path, python=python, platform=platform, overrides=pinned)
        for path in inputs(root)
        for python, platform in platforms(matrix).items()
    ]


def known_overlays(base: Path | None = None) -> list[Matrix]:
    """The matrix ``base`` (default the checkout's) with each overlay in .ci/ that re-pins
    requirements."""
    out = []
    for path in sorted((project_root() / KNOWN_OVERLAYS).glob("*.toml")):
        matrix = load_matrix(base, overlay=path)
        if matrix.requirement_overrides or matrix.build_constraints:
            out.append(matrix)
    return out


# ------------------------------------------------------------------------------------------------
# Reading and checking


@dataclass
class Lock:
    fields: dict[str, str]
    pins: dict[str, tuple[str, frozenset[str]]] = field(default_factory=dict)  # name -> ver, hashes


def read_lock(path: Path) -> Lock:
    """Parse a lock written by :func:`generate` (uv's requirement format with hashes)."""
    lock = Lock(fields={})
    current: str | None = None
    for raw in path.read_text(encoding="utf-8").splitlines():
        match = _FIELD.match(raw)
        if match:
            lock.fields[match.group(1)] = match.group(2)
            continue
        if raw.startswith("#") or not raw.strip():
            continue
        pin = _PIN.match(raw)
        if pin:
            current = naming.distribution_name(pin.group(1))
            lock.pins[current] = (pin.group(2), frozenset())
        if current is not None:
            version, hashes = lock.pins[current]
            lock.pins[current] = (version, hashes | set(_HASH.findall(raw)))
    return lock


def problem(spec: LockSpec) -> str | None:
    """Why ``spec``'s lock cannot be used (missing or stale), or None."""
    if not spec.path.is_file():
        return (
            f"no lock {_rel(spec.path)} for Python {spec.python} from {_rel(spec.input)}: "
            f"`{COMMAND}` writes it"
        )
    recorded = read_lock(spec.path).fields
    for key, value in spec.fields().items():
        if recorded.get(key) != value:
            return (
                f"{_rel(spec.path)} is stale: its {key} is {recorded.get(key)!r}, now {value!r}; "
                f"run `{COMMAND}`"
            )
    return None


def _for_build(input: Path, python: str, overrides: Mapping[str, str] | None) -> LockSpec:
    """The spec a build asks for. The platform is taken from the lock itself: a build does not
    know every target's glibc (the fast suite and `invoke lock --check` compare it)."""
    spec = LockSpec(input, python, "", tuple(sorted((overrides or {}).items())))
    if spec.path.is_file():
        platform = read_lock(spec.path).fields.get("platform", "")
        spec = LockSpec(input, python, platform, spec.overrides)
    return spec


def require(input: Path, python: str, overrides: Mapping[str, str] | None = None) -> Path:
    """The up-to-date lock of ``input`` for ``python``, or one error naming what to run."""
    spec = _for_build(input, python, overrides)
    why = problem(spec)
    if why:
        raise GdalLambdaError(why)
    return spec.path


def split(lock_text: str, names: Iterable[str]) -> tuple[str, str]:
    """Move the entries of ``names`` out of a lock: (the rest, those entries)."""
    wanted = {naming.distribution_name(n) for n in names}
    kept: list[str] = []
    moved: list[str] = []
    into = kept
    for raw in lock_text.splitlines(keepends=True):
        pin = _PIN.match(raw)
        if pin:
            into = moved if naming.distribution_name(pin.group(1)) in wanted else kept
        elif not raw.startswith((" ", "\t")):
            into = kept
        into.append(raw)
    return "".join(kept), "".join(moved)


def build_env_spec(lock: LockSpec, package: str, constraints: Iterable[str]) -> LockSpec:
    return LockSpec(
        input=lock.input,
        python=lock.python,
        platform=lock.platform,
        overrides=lock.overrides,
        build_for=naming.distribution_name(package),
        constraints=tuple(sorted(constraints)),
    )


def require_build_env(
    input: Path,
    python: str,
    package: str,
    overrides: Mapping[str, str] | None,
    constraints: Iterable[str],
) -> Path:
    """The lock of the build environment of ``package`` (built alone, held to constraints)."""
    spec = build_env_spec(_for_build(input, python, overrides), package, constraints)
    why = problem(spec)
    if why:
        raise GdalLambdaError(why)
    return spec.path


def layer_context(
    input: Path,
    python: str,
    dest: Path,
    overrides: Mapping[str, str] | None = None,
    build_constraints: Mapping[str, list[str]] | None = None,
    base: Path | None = None,
) -> None:
    """Write a recipe's requirements.lock, isolated.lock and build-env.lock into ``dest``.

    ``base``: the requirements of the recipe this one extends, whose layer image it is built
    on; the entries that recipe's lock already installs are left out, and each must be pinned
    to the same version in both locks."""
    path = require(input, python, overrides)
    text = path.read_text(encoding="utf-8")
    pinned = read_lock(path).pins
    if base is not None:
        base_path = require(base, python, overrides)
        have = read_lock(base_path).pins
        for name, (version, _) in sorted(have.items()):
            if pinned.get(name, ("",))[0] != version:
                mine = pinned.get(name, ("none",))[0]
                raise GdalLambdaError(
                    f"{_rel(path)} pins {name} {mine} but the layer it extends has {version} "
                    f"({_rel(base_path)}): run `{COMMAND}`"
                )
        text, _ = split(text, have)
        pinned = {name: pin for name, pin in pinned.items() if name not in have}
    isolated = [
        name for name in (build_constraints or {}) if naming.distribution_name(name) in pinned
    ]
    shared, moved = split(text, isolated)
    env = ""
    for name in isolated:
        path = require_build_env(input, python, name, overrides, build_constraints[name])
        env += path.read_text(encoding="utf-8")
    atomic_write_text(dest / "requirements.lock", shared)
    atomic_write_text(dest / "isolated.lock", moved)
    atomic_write_text(dest / "build-env.lock", env)


# ------------------------------------------------------------------------------------------------
# Generating


def _uv() -> list[str]:
    try:
        import uv  # noqa: F401
    except ImportError:
        raise GdalLambdaError(
            "uv is not installed in this environment: pip install -e '.[lock]'"
        ) from None
    return [sys.executable, "-m", "uv"]


def condense(stderr: str) -> str:
    """uv's resolver explanation as one line (its ``╰─▶`` paragraph, or its last line)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for index, line in enumerate(lines):
        if "╰─▶" in line:
            text = " ".join(
                part.replace("╰─▶", "").strip() for part in lines[index:] if "hint:" not in part
            )
            return re.sub(r"\s+", " ", text).strip()
    return lines[-1] if lines else "uv failed without a message"


def compile_lock(
    spec: LockSpec, requirements: Path, index_url: str = INDEX_URL, constraints: Path | None = None
) -> str:
    """Run uv for ``spec``; return the lock's body (no header) or one error line."""
    with tempfile.TemporaryDirectory(prefix="gdal-lambda-lock.") as tmp:
        out = Path(tmp) / "lock.txt"
        command = [
            *_uv(),
            "pip",
            "compile",
            str(requirements),
            "--quiet",
            "--no-config",
            "--generate-hashes",
            "--no-header",
            "--no-annotate",
            "--python-version",
            spec.python,
            "--python-platform",
            spec.platform,
            "--index-url",
            index_url,
            "--output-file",
            str(out),
        ]
        if spec.overrides:
            overrides = Path(tmp) / "overrides.txt"
            overrides.write_text("".join(f"{n}=={v}\n" for n, v in spec.overrides))
            command += ["--override", str(overrides)]
        if constraints is not None:
            command += ["--constraint", str(constraints)]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            what = f"the build environment of {spec.build_for}" if spec.build_for else "it"
            raise GdalLambdaError(
                f"{_rel(spec.input)} cannot be resolved for Python {spec.python} "
                f"({spec.platform}; {what}): {condense(result.stderr)}"
            )
        return out.read_text(encoding="utf-8")


def render(spec: LockSpec, body: str) -> str:
    head = [
        f"{_HEADER}: written by `{COMMAND}` from the fields below; do not edit by hand.",
        *(f"# {key}: {value}" for key, value in spec.fields().items()),
    ]
    return "\n".join(head) + "\n" + body


def write(spec: LockSpec, index_url: str = INDEX_URL) -> Path:
    body = compile_lock(spec, spec.input, index_url)
    atomic_write_text(spec.path, render(spec, body))
    return spec.path


def sdist_build_requires(name: str, version: str, hashes: frozenset[str], index_url: str) -> list:
    """``[build-system] requires`` of ``name``'s sdist on the index, its hash checked."""
    import requests

    listing = requests.get(
        f"{index_url.rstrip('/')}/{naming.distribution_name(name)}/",
        headers={"Accept": "application/vnd.pypi.simple.v1+json"},
        timeout=60,
    )
    listing.raise_for_status()
    wanted = re.compile(rf"^{re.escape(name)}-{re.escape(version)}\.tar\.gz$", re.IGNORECASE)
    for item in listing.json().get("files", []):
        if wanted.match(item["filename"].replace("_", "-")) or wanted.match(item["filename"]):
            data = requests.get(item["url"], timeout=300).content
            if _sha(data) not in hashes:
                raise GdalLambdaError(
                    f"{item['filename']} from {index_url} matches none of the lock's hashes"
                )
            with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                member = next(
                    m
                    for m in tar.getmembers()
                    if m.name.count("/") == 1 and m.name.endswith("/pyproject.toml")
                )
                handle = tar.extractfile(member)
                assert handle is not None
                project = tomllib.loads(handle.read().decode("utf-8"))
            return list(project.get("build-system", {}).get("requires", ["setuptools", "wheel"]))
    raise GdalLambdaError(f"{index_url} serves no sdist of {name} {version}")


def write_build_env(
    lock: LockSpec, package: str, constraints: Iterable[str], index_url: str = INDEX_URL
) -> Path | None:
    """Lock the isolated build environment of ``package`` if ``lock`` holds it."""
    pins = read_lock(lock.path).pins
    key = naming.distribution_name(package)
    if key not in pins:
        return None
    version, hashes = pins[key]
    spec = build_env_spec(lock, package, constraints)
    requires = sdist_build_requires(key, version, hashes, index_url)
    with tempfile.TemporaryDirectory(prefix="gdal-lambda-lock.") as tmp:
        req = Path(tmp) / "build-requires.txt"
        req.write_text("".join(f"{r}\n" for r in requires))
        con = Path(tmp) / "constraints.txt"
        con.write_text("".join(f"{c}\n" for c in spec.constraints))
        body = compile_lock(
            LockSpec(spec.input, spec.python, spec.platform, (), spec.build_for, spec.constraints),
            req,
            index_url,
            con,
        )
    atomic_write_text(spec.path, render(spec, body))
    return spec.path


def all_specs(
    matrix: Matrix, overlays: Iterable[Matrix]
) -> list[tuple[LockSpec, dict[str, list[str]]]]:
    """Every lock to keep, each with the build constraints of its isolated packages: the
    matrix's own (no overrides, no isolated builds), then each overlay's."""
    out = [(spec, {}) for spec in specs(matrix)]
    for overlay in overlays:
        out += [
            (spec, overlay.build_constraints)
            for spec in specs(overlay, overlay.requirement_overrides)
        ]
    seen: set[Path] = set()
    unique: list[tuple[LockSpec, dict[str, list[str]]]] = []
    for spec, constraints in out:
        if spec.path not in seen:
            seen.add(spec.path)
            unique.append((spec, constraints))
    return unique


def _isolated(spec: LockSpec, constraints: dict[str, list[str]]) -> list[tuple[str, list[str]]]:
    """Packages of a recipe lock built in their own environment (docker/python has none)."""
    if spec.input.parent.parent.name != "layers":
        return []
    return sorted(constraints.items())


def regenerate(
    matrix: Matrix,
    overlays: Iterable[Matrix],
    index_url: str = INDEX_URL,
    echo: Callable[[str], object] = print,
) -> list[Path]:
    """Write every lock (the matrix's and each overlay's, build environments included)."""
    written = []
    for spec, constraints in all_specs(matrix, overlays):
        written.append(write(spec, index_url))
        echo(f"wrote {_rel(spec.path)}")
        for package, wanted in _isolated(spec, constraints):
            path = write_build_env(spec, package, wanted, index_url)
            if path:
                written.append(path)
                echo(f"wrote {_rel(path)}")
    return written


def check(matrix: Matrix, overlays: Iterable[Matrix]) -> list[str]:
    """One line per missing or stale lock (build-environment locks included)."""
    problems = []
    for spec, constraints in all_specs(matrix, overlays):
        why = problem(spec)
        if why:
            problems.append(why)
            continue
        pins = read_lock(spec.path).pins
        for package, wanted in _isolated(spec, constraints):
            if naming.distribution_name(package) in pins:
                env = problem(build_env_spec(spec, package, wanted))
                if env:
                    problems.append(env)
    return problems


# ------------------------------------------------------------------------------------------------
# The manifest: what each distribution was installed or built from


def report_entries(report: Mapping[str, object]) -> dict[str, dict[str, str]]:
    """name -> {version, file, sha256} from one pip installation report (``--report``)."""
    out: dict[str, dict[str, str]] = {}
    for item in report.get("install", []):  # type: ignore[union-attr]
        meta = item.get("metadata", {})
        info = item.get("download_info", {})
        digest = info.get("archive_info", {}).get("hashes", {}).get("sha256", "")
        url = info.get("url", "")
        out[naming.distribution_name(meta.get("name", ""))] = {
            "version": meta.get("version", ""),
            "file": url.rsplit("/", 1)[-1],
            "sha256": digest,
        }
    return out


def python_packages(
    installed: Mapping[str, str], reports: Iterable[Mapping[str, object]]
) -> dict[str, dict[str, str]]:
    """Manifest entries: every installed distribution with its version and source file's hash.

    A distribution installed without a report entry, or whose version differs from the
    report's, is an error: the layer would claim a provenance it does not have."""
    entries: dict[str, dict[str, str]] = {}
    for report in reports:
        entries.update(report_entries(report))
    out: dict[str, dict[str, str]] = {}
    for name, version in sorted(installed.items()):
        entry = entries.get(naming.distribution_name(name))
        if entry is None or entry["version"] != version or not entry["sha256"]:
            raise GdalLambdaError(
                f"{name} {version} is installed in the layer but pip's reports do not say which "
                "file it came from: rebuild the layer image"
            )
        out[name] = {"version": version, "file": entry["file"], "sha256": entry["sha256"]}
    return out


_READ_REPORTS = (
    "import json, pathlib, sys\n"
    "out = []\n"
    "for p in sorted(pathlib.Path(sys.argv[1]).glob('*.json')):\n"
    "    r = json.loads(p.read_text())\n"
    "    out.append({'install': [{'metadata': {k: i['metadata'][k] for k in ('name', 'version')},"
    " 'download_info': i.get('download_info', {})} for i in r.get('install', [])]})\n"
    "print(json.dumps(out))\n"
)


def image_reports(cli: object, image: str) -> list[dict[str, object]]:
    """pip's installation reports left in a layer image (compacted in the image)."""
    from . import containers

    ran = containers.run(cli, image, ["python3", "-c", _READ_REPORTS, REPORT_DIR])  # type: ignore[arg-type]
    code, out = ran.status, ran.output
    if code != 0:
        raise GdalLambdaError(
            f"{image} holds no pip installation reports in {REPORT_DIR}: rebuild it "
            f"({out.strip().splitlines()[-1] if out.strip() else 'no output'})"
        )
    return json.loads(out.strip().splitlines()[-1])
