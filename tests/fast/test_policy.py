"""Lambda policies and the ELF closure check, on small libraries compiled here with gcc.

Every tree is real: shared objects and executables built by the host's compiler, checked with
pyelftools, grafted with patchelf and then run by the real dynamic loader.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from helpers import ROOT

from gdal_lambda import elf, policy, versions
from gdal_lambda.errors import GdalLambdaError

pytestmark = pytest.mark.skipif(
    shutil.which("gcc") is None, reason="needs gcc (apt-get install gcc)"
)

POLICIES = ROOT / "policies"
MOUNT = "/opt"
LD_PATH = ("/lib64", "/usr/lib64", "/opt/lib")


def _gcc(*args: str) -> None:
    subprocess.run(["gcc", *args], check=True, capture_output=True)


def _lib(tmp: Path, folder: Path, name: str, soname: str, body: str, *link: str) -> Path:
    src = tmp / f"{name}.c"
    src.write_text(body)
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / soname
    _gcc("-shared", "-fPIC", "-o", str(out), f"-Wl,-soname,{soname}", str(src), *link)
    return out


def _exe(tmp: Path, out: Path, body: str, *link: str) -> Path:
    src = tmp / f"{out.name}.c"
    src.write_text(body)
    out.parent.mkdir(parents=True, exist_ok=True)
    _gcc("-o", str(out), str(src), *link)
    return out


BAR = "int bar(void) { return 41; }\n"
FOO = "int bar(void);\nint foo(void) { return bar() + 1; }\n"
MAIN = '#include <stdio.h>\nint foo(void);\nint main(void) { printf("%d\\n", foo()); return 0; }\n'


def _policy(target: str = "debian13") -> policy.Policy:
    matrix = versions.load_matrix()
    return policy.load_policy(POLICIES, target, "x86_64", matrix.targets)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """opt/bin/tool -> libfoo.so.1 -> libbar.so.1, all in opt/lib, RUNPATH $ORIGIN/../lib."""
    opt = tmp_path / "opt"
    lib = opt / "lib"
    _lib(tmp_path, lib, "bar", "libbar.so.1", BAR)
    _lib(tmp_path, lib, "foo", "libfoo.so.1", FOO, f"-L{lib}", "-l:libbar.so.1")
    _exe(
        tmp_path,
        opt / "bin" / "tool",
        MAIN,
        f"-L{lib}",
        "-l:libfoo.so.1",
        "-Wl,-rpath,$ORIGIN/../lib",
    )
    return opt


def test_a_complete_tree_passes_and_reports_its_highest_glibc(tree: Path) -> None:
    report = policy.check_tree(tree, MOUNT, LD_PATH, _policy())
    assert report.ok, report.violations
    assert report.elf_count == 3
    assert report.highest_names()["GLIBC"].startswith("GLIBC_2.")


def test_a_library_outside_the_policy_and_the_tree_is_named(tree: Path) -> None:
    (tree / "lib" / "libbar.so.1").unlink()
    report = policy.check_tree(tree, MOUNT, LD_PATH, _policy())
    assert [(v.file, v.library) for v in report.violations] == [("lib/libfoo.so.1", "libbar.so.1")]
    with pytest.raises(
        GdalLambdaError,
        match=r"lib/libfoo.so.1: needs libbar.so.1, which the policy does not allow",
    ):
        report.raise_for_violations()


def test_a_too_new_symbol_version_names_the_file_and_the_symbol(tmp_path: Path, tree: Path) -> None:
    # memcpy@GLIBC_2.14 (x86_64): above a ceiling of 2.5, whatever the host's glibc.
    _exe(
        tmp_path,
        tree / "bin" / "copy",
        "#include <string.h>\n#include <stdlib.h>\n"
        "int main(int c, char **v) { char *d = malloc(64); memcpy(d, v[0], (size_t)c); return d[0]; }\n",
    )
    low = _policy()
    low = policy.Policy(**{**low.__dict__, "ceilings": {**low.ceilings, "GLIBC": (2, 5)}})
    report = policy.check_tree(tree, MOUNT, LD_PATH, low)
    messages = [str(v) for v in report.violations]
    assert (
        "bin/copy: needs libc.so.6 memcpy@GLIBC_2.14, newer than the policy's GLIBC_2.5" in messages
    )


def test_rpath_is_inherited_by_what_the_object_loads_and_runpath_is_not(tmp_path: Path) -> None:
    """The loader's rule: DT_RPATH of the loading chain applies to indirect dependencies,
    DT_RUNPATH only to the object's own; libbar sits where only the executable's path finds it."""
    for tag, expected in (("--disable-new-dtags", []), ("--enable-new-dtags", ["libbar.so.1"])):
        opt = tmp_path / tag.strip("-") / "opt"
        private = opt / "private"
        _lib(tmp_path, private, "bar", "libbar.so.1", BAR)
        _lib(tmp_path, private, "foo", "libfoo.so.1", FOO, f"-L{private}", "-l:libbar.so.1")
        _exe(
            tmp_path,
            opt / "bin" / "tool",
            MAIN,
            f"-L{private}",
            "-l:libfoo.so.1",
            f"-Wl,{tag}",
            "-Wl,-rpath,$ORIGIN/../private",
        )
        info = elf.read_elf(opt / "bin" / "tool")
        assert info is not None
        assert bool(info.rpath) == (tag == "--disable-new-dtags")
        assert bool(info.runpath) == (tag == "--enable-new-dtags")
        # Only the executable is a root here: libfoo alone cannot find libbar either way.
        walker = policy._Walker(opt, MOUNT, LD_PATH, _policy())
        walker.walk(info, ())
        assert [v.library for v in walker.report.violations] == expected
        # And the real loader agrees.
        run = subprocess.run([str(opt / "bin" / "tool")], capture_output=True, text=True, env={})
        assert (run.returncode == 0) == (not expected), run.stderr


def test_graft_renames_bundled_libraries_and_survives_a_shadowing_copy(
    tmp_path: Path, tree: Path
) -> None:
    # The usual chain of links to a library (dev link -> soname link -> file): none may dangle.
    lib = tree / "lib"
    (lib / "libbar.so.1").rename(lib / "libbar.so.1.2.3")
    (lib / "libbar.so.1").symlink_to("libbar.so.1.2.3")
    (lib / "libbar.so").symlink_to("libbar.so.1")
    renames = policy.graft(tree)
    assert set(renames) == {"libbar.so.1", "libfoo.so.1"}
    assert all(new.startswith(old.split(".so")[0] + "-") for old, new in renames.items())
    names = sorted(p.name for p in (tree / "lib").iterdir())
    assert names == sorted(renames.values())
    tool = elf.read_elf(tree / "bin" / "tool")
    assert tool is not None and tool.needed[0] == renames["libfoo.so.1"]
    assert policy.check_tree(tree, MOUNT, LD_PATH, _policy()).ok
    # A runtime's own, different libbar.so.1 and libfoo.so.1 ahead on LD_LIBRARY_PATH, as
    # /var/lang/lib is on Lambda: the grafted tree does not pick them up.
    shadow = tmp_path / "shadow"
    _lib(tmp_path, shadow, "bar2", "libbar.so.1", "int bar(void) { return 0; }\n")
    _lib(tmp_path, shadow, "foo2", "libfoo.so.1", "int foo(void) { return -1; }\n")
    run = subprocess.run(
        [str(tree / "bin" / "tool")],
        capture_output=True,
        text=True,
        env={"LD_LIBRARY_PATH": f"{shadow}:{tree / 'lib'}"},
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "42"


def test_an_ungrafted_tree_is_shadowed_by_the_runtime_copy(tmp_path: Path, tree: Path) -> None:
    """The failure grafting prevents, shown for real: same test as above without the graft."""
    shadow = tmp_path / "shadow"
    _lib(tmp_path, shadow, "foo2", "libfoo.so.1", "int foo(void) { return -1; }\n")
    run = subprocess.run(
        [str(tree / "bin" / "tool")],
        capture_output=True,
        text=True,
        env={"LD_LIBRARY_PATH": f"{shadow}:{tree / 'lib'}"},
    )
    assert run.stdout.strip() == "-1"


def test_public_libraries_keep_their_names(tmp_path: Path) -> None:
    opt = tmp_path / "opt"
    _lib(tmp_path, opt / "lib", "gdal", "libgdal.so.39", "int g(void) { return 1; }\n")
    assert policy.graft(opt) == {}
    assert (opt / "lib" / "libgdal.so.39").exists()


def test_the_floor_policy_is_at_or_below_al2023_in_every_family() -> None:
    """debian11 is the ABI floor: what passes its policy must pass al2023's symbol ceilings."""
    matrix = versions.load_matrix()
    for arch in ("x86_64", "arm64"):
        floor = policy.load_policy(POLICIES, "debian11", arch, matrix.targets)
        al2023 = policy.load_policy(POLICIES, "al2023", arch, matrix.targets)
        assert set(floor.ceilings) == set(al2023.ceilings)
        for family, ceiling in floor.ceilings.items():
            assert ceiling <= al2023.ceilings[family], (arch, family)
        assert floor.libraries <= al2023.libraries
        assert floor.also_allowed <= al2023.also_allowed
    floor = policy.load_policy(POLICIES, "debian11", "x86_64", matrix.targets)
    assert floor.ceiling_name("GLIBC") == "GLIBC_2.31"
    assert floor.ceiling_name("GLIBCXX") == "GLIBCXX_3.4.28"


def test_policy_files_name_known_targets_only(tmp_path: Path) -> None:
    shutil.copytree(POLICIES, tmp_path / "p")
    (tmp_path / "p" / "mystery.toml").write_text('target = "al2099"\nlibraries = []\n')
    known = versions.load_matrix().targets
    with pytest.raises(
        GdalLambdaError, match=r"mystery.toml names target 'al2099'.*fix its `target`"
    ):
        policy.load_policy(tmp_path / "p", "al2023", "x86_64", known)


def test_every_target_has_a_policy_for_every_architecture() -> None:
    matrix = versions.load_matrix()
    for name in matrix.targets:
        for arch in ("x86_64", "arm64"):
            loaded = policy.load_policy(POLICIES, name, arch, matrix.targets)
            assert "libc.so.6" in loaded.libraries
            assert {"GLIBC", "GLIBCXX", "CXXABI", "GCC"} <= set(loaded.ceilings)
    al2023 = policy.load_policy(POLICIES, "al2023", "x86_64", matrix.targets)
    assert al2023.ceiling_name("GLIBC") == "GLIBC_2.34"
    assert al2023.ceiling_name("GLIBCXX") == "GLIBCXX_3.4.29"
    # The public image is not the execution environment: libexpat is not promised.
    assert "libexpat.so.1" not in al2023.libraries


def test_libraries_that_need_each_other_through_rpath_end_the_walk(tmp_path: Path) -> None:
    """liba and libb (both DT_RPATH $ORIGIN) need each other: one walk, no recursion."""
    opt = tmp_path / "opt"
    lib = opt / "lib"
    lib.mkdir(parents=True)
    for _name, other in (("a", "b"), ("b", "a")):
        # A stub of the other first, so that each can link against it.
        _lib(
            tmp_path,
            lib,
            f"{other}stub",
            f"lib{other}.so.1",
            f"int {other}(void) {{ return 1; }}\n",
        )
    for name, other in (("a", "b"), ("b", "a")):
        _lib(
            tmp_path,
            lib,
            name,
            f"lib{name}.so.1",
            f"int {other}(void);\nint {name}(void) {{ return {other}(); }}\n",
            f"-L{lib}",
            f"-l:lib{other}.so.1",
            "-Wl,--disable-new-dtags",
            "-Wl,-rpath,$ORIGIN",
        )
    report = policy.check_tree(opt, MOUNT, (), _policy())
    assert report.ok, report.violations
    assert report.elf_count == 2


def test_an_object_with_runpath_passes_no_rpath_on(tmp_path: Path) -> None:
    """glibc ignores DT_RPATH on an object that also has DT_RUNPATH, for what it loads too.

    The executable's RUNPATH finds libfoo (in run/); libbar (in rpath/) is reachable only
    through the executable's DT_RPATH, which the loader ignores: libbar is missing."""
    opt = tmp_path / "opt"
    _lib(tmp_path, opt / "rpath", "bar", "libbar.so.1", BAR)
    _lib(tmp_path, opt / "run", "foo", "libfoo.so.1", FOO, f"-L{opt / 'rpath'}", "-l:libbar.so.1")
    tool = _exe(
        tmp_path,
        opt / "bin" / "tool",
        MAIN,
        f"-L{opt / 'run'}",
        "-l:libfoo.so.1",
        f"-Wl,-rpath-link,{opt / 'rpath'}",
    )
    real = elf.read_elf(tool)
    assert real is not None
    # Linkers write one tag or the other: the both-tags case is described, not compiled.
    both = replace(real, rpath=("$ORIGIN/../rpath",), runpath=("$ORIGIN/../run",))
    walker = policy._Walker(opt, MOUNT, LD_PATH, _policy())
    walker.walk(both, ())
    assert [(v.file, v.library) for v in walker.report.violations] == [
        ("run/libfoo.so.1", "libbar.so.1")
    ]


def test_two_files_with_one_soname_are_refused(tmp_path: Path, tree: Path) -> None:
    _lib(tmp_path, tree / "lib", "bar2", "libbar.so.1.0", BAR.replace("41", "40"))
    subprocess.run(
        [
            policy.patchelf_command(),
            "--set-soname",
            "libbar.so.1",
            str(tree / "lib" / "libbar.so.1.0"),
        ],
        check=True,
    )
    with pytest.raises(GdalLambdaError, match=r"two files with the soname libbar.so.1"):
        policy.graft(tree)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('target = "al2023"\nlibraries = [\n', "not valid TOML"),
        (
            'target = "al2023"\nlibraries = []\n[arch.x86_64]\nloader = "l"\n'
            "symbol_versions = { GLIBC = 2.34 }\n",
            r"2.34 is not a version in quotes",
        ),
    ],
    ids=["broken-toml", "unquoted-version"],
)
def test_a_bad_policy_file_is_one_line(tmp_path: Path, text: str, message: str) -> None:
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "al2023.toml").write_text(text)
    known = versions.load_matrix().targets
    with pytest.raises(GdalLambdaError, match=message):
        policy.load_policy(folder, "al2023", "x86_64", known)


def test_a_file_for_another_architecture_is_a_violation(tree: Path) -> None:
    """An x86_64 tree checked as arm64 names every file; the same tree passes as x86_64."""
    assert policy.check_tree(tree, MOUNT, LD_PATH, _policy(), machine="EM_X86_64").ok
    tool = tree / "bin" / "tool"
    data = bytearray(tool.read_bytes())
    data[18:20] = (183).to_bytes(2, "little")  # e_machine: EM_AARCH64
    tool.write_bytes(bytes(data))
    report = policy.check_tree(tree, MOUNT, LD_PATH, _policy(), machine="EM_X86_64")
    assert [(v.file, v.library) for v in report.violations] == [("bin/tool", "EM_AARCH64")]
    with pytest.raises(GdalLambdaError, match="bin/tool: is built for EM_AARCH64, not EM_X86_64"):
        report.raise_for_violations()
