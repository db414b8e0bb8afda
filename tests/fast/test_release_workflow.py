"""The release workflow fans out the project's own matrix: nothing in it is written by hand.

The job matrix must be `fromJSON` of the `invoke matrix --json` step's output, each job must run
the entry's nox build session, save its caches, then run its test session (both defined in
noxfile.py), uploading, caching and publishing every layer recipe the session built, and
publishing must happen only on a push of a tag v*, under an OIDC role, of the entries marked
`publish` only. PyYAML comes with moto[server] (the test extra).

The workflow's conditions and expressions are evaluated here by a small evaluator of GitHub's
expression syntax (below), and its shell steps are run with recording stand-ins for nox and
invoke, so the tests check what the steps do, not how they are spelled.
"""

from __future__ import annotations

import fnmatch
import json
import math
import re
import shutil
import stat
import subprocess
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import ROOT, invoke

from gdal_lambda import recipes

WORKFLOW = ROOT / ".github" / "workflows" / "release.yml"


def workflow() -> dict[str, Any]:
    data = yaml.safe_load(WORKFLOW.read_text())
    # YAML 1.1 reads the key `on` as True
    data["on"] = data.pop(True, data.get("on"))
    return data


def entries() -> list[dict[str, Any]]:
    result = invoke("matrix", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["include"]


def nox_sessions() -> set[str]:
    """The session names noxfile.py registers, read by running it with a recording `nox`."""
    return noxfile()[0]


def noxfile() -> tuple[set[str], dict[str, Any]]:
    """noxfile.py run with a recording `nox`: the session names it registers, its globals."""
    names: set[str] = set()
    namespace: dict[str, Any] = {"__name__": "noxfile", "__file__": str(ROOT / "noxfile.py")}

    def session(func: Callable[..., Any] | None = None, **kwargs: Any) -> Any:
        def register(f: Callable[..., Any]) -> Callable[..., Any]:
            names.add(kwargs.get("name") or f.__name__)
            return f

        return register(func) if func is not None else register

    fake = types.ModuleType("nox")
    fake.session = session  # type: ignore[attr-defined]
    fake.options = types.SimpleNamespace()  # type: ignore[attr-defined]
    fake.Session = object  # type: ignore[attr-defined]
    saved = sys.modules.get("nox")
    sys.modules["nox"] = fake
    try:
        code = compile((ROOT / "noxfile.py").read_text(), str(ROOT / "noxfile.py"), "exec")
        exec(code, namespace)
    finally:
        if saved is None:
            del sys.modules["nox"]
        else:
            sys.modules["nox"] = saved
    return names, namespace


def matrix_job() -> tuple[str, dict[str, Any]]:
    jobs = workflow()["jobs"]
    fanned = [(n, j) for n, j in jobs.items() if "matrix" in j.get("strategy", {})]
    assert len(fanned) == 1, "one job fans out the release matrix"
    return fanned[0]


def publish_job() -> dict[str, Any]:
    jobs = [
        j
        for j in workflow()["jobs"].values()
        if any("invoke publish" in s.get("run", "") for s in j["steps"])
    ]
    assert len(jobs) == 1, "one job publishes"
    return jobs[0]


# ------------------------------------------------------------------------------------------------
# GitHub's expression syntax (docs.github.com: "Evaluate expressions in workflows and actions"),
# as much of it as this workflow uses: literals, contexts, ! == != && || and the functions below.
# && and || return one of their operands; == on two strings and startsWith ignore case.

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>\d+(?:\.\d+)?)"
    r"|(?P<op>==|!=|<=|>=|&&|\|\||[!<>().,\[\]])|(?P<name>[A-Za-z_][\w-]*))"
)
_STATUS_FUNCTIONS = ("success", "failure", "cancelled", "always")


def _truthy(value: Any) -> bool:
    return value not in (False, None, 0, "") and not (
        isinstance(value, float) and math.isnan(value)
    )


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _number(value: Any) -> float:
    if value is None:
        return 0.0
    if isinstance(value, (bool, int, float)):
        return float(value)
    try:
        return float(value) if str(value).strip() else 0.0
    except ValueError:
        return math.nan


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.casefold() == b.casefold()
    if type(a) is type(b):
        return bool(a == b)
    return _number(a) == _number(b)


class _Expression:
    def __init__(self, text: str, ctx: dict[str, Any]) -> None:
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        while pos < len(text.rstrip()):
            match = _TOKEN.match(text, pos)
            assert match and match.end() > pos, f"cannot read {text[pos:]!r} in {text!r}"
            kind = match.lastgroup
            assert kind is not None
            self.tokens.append((kind, match.group(kind)))
            pos = match.end()
        self.at = 0
        self.ctx = ctx
        self.text = text

    def value(self) -> Any:
        result = self.either()
        assert self.at == len(self.tokens), f"trailing tokens in {self.text!r}"
        return result

    def peek(self) -> str | None:
        return self.tokens[self.at][1] if self.at < len(self.tokens) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        assert self.at < len(self.tokens), f"{self.text!r} ends early"
        token = self.tokens[self.at]
        assert expected is None or token[1] == expected, (expected, token, self.text)
        self.at += 1
        return token

    def either(self) -> Any:
        left = self.both()
        while self.peek() == "||":
            self.take()
            right = self.both()
            left = left if _truthy(left) else right
        return left

    def both(self) -> Any:
        left = self.compare()
        while self.peek() == "&&":
            self.take()
            right = self.compare()
            left = right if _truthy(left) else left
        return left

    def compare(self) -> Any:
        left = self.unary()
        if self.peek() in ("==", "!="):
            op = self.take()[1]
            right = self.unary()
            return _equal(left, right) == (op == "==")
        return left

    def unary(self) -> Any:
        if self.peek() == "!":
            self.take()
            return not _truthy(self.unary())
        return self.primary()

    def primary(self) -> Any:
        kind, token = self.take()
        if kind == "str":
            return token[1:-1].replace("''", "'")
        if kind == "num":
            return float(token)
        if token == "(":
            inner = self.either()
            self.take(")")
            return inner
        assert kind == "name", (token, self.text)
        if token in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[token]
        if self.peek() == "(":
            self.take()
            args: list[Any] = []
            while self.peek() != ")":
                args.append(self.either())
                if self.peek() == ",":
                    self.take()
            self.take(")")
            return self.call(token, args)
        value: Any = self.ctx.get(token)
        while self.peek() in (".", "["):
            if self.take()[1] == ".":
                key = self.take()[1]
            else:
                key = _text(self.either())
                self.take("]")
            value = value.get(key) if isinstance(value, dict) else None
        return value

    def call(self, name: str, args: list[Any]) -> Any:
        status = self.ctx.get("job", {}).get("status", "success")
        functions: dict[str, Callable[..., Any]] = {
            "always": lambda: True,
            "success": lambda: status == "success",
            "failure": lambda: status == "failure",
            "cancelled": lambda: status == "cancelled",
            "startsWith": lambda s, p: _text(s).casefold().startswith(_text(p).casefold()),
            "endsWith": lambda s, p: _text(s).casefold().endswith(_text(p).casefold()),
            "contains": lambda s, p: (
                any(_equal(x, p) for x in s)
                if isinstance(s, list)
                else _text(p).casefold() in _text(s).casefold()
            ),
            "format": lambda f, *a: re.sub(r"\{(\d+)\}", lambda m: _text(a[int(m[1])]), f),
            "fromJSON": lambda s: json.loads(s),
            "toJSON": lambda v: json.dumps(v),
            "hashFiles": lambda *paths: "HASH",
        }
        assert name in functions, f"no function {name} in this evaluator ({self.text!r})"
        return functions[name](*args)


def evaluate(text: str, ctx: dict[str, Any]) -> Any:
    return _Expression(text, ctx).value()


def render(value: Any, ctx: dict[str, Any]) -> Any:
    """A workflow value: `${{ x }}` alone keeps x's type; text around `${{ }}` makes a string."""
    if not isinstance(value, str):
        return value
    whole = re.fullmatch(r"\s*\$\{\{(.*?)\}\}\s*", value, re.S)
    if whole and "${{" not in whole.group(1):
        return evaluate(whole.group(1), ctx)
    return re.sub(r"\$\{\{(.*?)\}\}", lambda m: _text(evaluate(m.group(1), ctx)), value)


def condition(value: Any, ctx: dict[str, Any]) -> bool:
    """Whether an `if:` passes: without a status function it is `success() && (...)`."""
    if value is None:
        value = "success()"
    text = str(value)
    whole = re.fullmatch(r"\s*\$\{\{(.*)\}\}\s*", text, re.S)
    if whole:
        text = whole.group(1)
    if not re.search(rf"\b({'|'.join(_STATUS_FUNCTIONS)})\s*\(", text):
        text = f"success() && ({text})"
    return _truthy(evaluate(text, ctx))


def context(
    *,
    event: str = "push",
    ref: str = "refs/heads/main",
    matrix: dict[str, Any] | None = None,
    status: str = "success",
    hits: str = "",
) -> dict[str, Any]:
    """The contexts a condition reads; every cache restore step reports cache-hit `hits`."""
    _, build = matrix_job()
    steps = {
        s["id"]: {"outputs": {"cache-hit": hits, "hash": "HASH"}}
        for s in build["steps"]
        if "id" in s
    }
    return {
        "github": {"event_name": event, "ref": ref, "run_id": "1"},
        "matrix": matrix or {},
        "steps": steps,
        "job": {"status": status},
        "runner": {"temp": "/tmp/runner"},
        "needs": {},
        "vars": {},
        "env": {},
    }


def entry(*, stem: str = "gdal3.13-py3.13", suffix: str = "", **fields: Any) -> dict[str, Any]:
    """A matrix entry of the shape `invoke matrix --json` prints, with its own names: the geo
    and geopandas recipes of `stem`, their zips and layers ending in `suffix` (-arm64)."""
    layer = "gdal" + stem.removeprefix("gdal").replace(".", "").replace("-py", "-py", 1)
    recipes = [
        {"recipe": r, "zip": f"dist/{stem}-{r}{suffix}.zip", "layer": f"{layer}-{r}{suffix}"}
        for r in ("geo", "geopandas")
    ]
    base: dict[str, Any] = {
        "line": "3.13",
        "python": "3.13",
        "arch": "x86_64",
        "target": "debian11",
        "session": "test-3.13",
        "recipes": recipes,
        "artifact": stem + suffix,
        "runner": "ubuntu-24.04",
        "publish": True,
    }
    made = {**base, **fields}
    made["zips"] = "\n".join(r["zip"] for r in made["recipes"])
    made["layers"] = ", ".join(r["layer"] for r in made["recipes"])
    return made


# The only real commands a step run here may use; anything else (python, pip, docker, sudo) is
# not on its PATH, so a test can never install or build anything.
_REAL_COMMANDS = ("bash", "env", "jq", "cat")


def run_step(
    script: str, tmp_path: Path, env: dict[str, str], fakes: tuple[str, ...] = ("nox",)
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run a `run:` block as GitHub's bash does, in `tmp_path` (the checkout it sees), with
    recording stand-ins for `fakes`: returns the result and the argument lines each stand-in
    was called with."""
    bin_dir = tmp_path / "bin"
    shutil.rmtree(bin_dir, ignore_errors=True)
    bin_dir.mkdir()
    for name in _REAL_COMMANDS:
        real = shutil.which(name)
        if real is not None:
            (bin_dir / name).symlink_to(real)
    log = tmp_path / "calls.log"
    log.write_text("")
    for name in fakes:
        fake = bin_dir / name
        fake.write_text(f'#!/usr/bin/env bash\nprintf \'{name} %s\\n\' "$*" >> "$CALLS_LOG"\n')
        fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    path = tmp_path / "step.sh"
    path.write_text(script)
    bash = shutil.which("bash")
    assert bash is not None
    result = subprocess.run(
        [bash, "--noprofile", "--norc", "-eo", "pipefail", str(path)],
        env={
            "PATH": str(bin_dir),
            "HOME": str(tmp_path),
            "CALLS_LOG": str(log),
            **env,
        },
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result, log.read_text().splitlines()


def nox_steps() -> list[tuple[int, dict[str, Any]]]:
    """The build job's steps that run a nox session."""
    _, build = matrix_job()
    return [(i, s) for i, s in enumerate(build["steps"]) if "nox -s" in s.get("run", "")]


def session_run_by(step: dict[str, Any], session: str, tmp_path: Path) -> str:
    """The nox session a step runs for an entry whose session is `session`."""
    result, calls = run_step(step["run"], tmp_path, {"SESSION": session})
    assert result.returncode == 0, result.stderr
    assert len(calls) == 1 and calls[0].startswith("nox -s "), calls
    return calls[0].removeprefix("nox -s ")


def build_and_test_steps(tmp_path: Path) -> tuple[int, int]:
    """Indices of the build job's step running the build session, and of its test session."""
    ran = {session_run_by(s, "test-3.13", tmp_path): i for i, s in nox_steps()}
    assert set(ran) == {"build-3.13", "test-3.13"}, ran
    return ran["build-3.13"], ran["test-3.13"]


def cache_save_steps() -> list[tuple[int, dict[str, Any]]]:
    _, build = matrix_job()
    return [
        (i, s)
        for i, s in enumerate(build["steps"])
        if s.get("uses", "").startswith("actions/cache/save@") or "docker save" in s.get("run", "")
    ]


def test_the_matrix_is_read_from_invoke_matrix() -> None:
    jobs = workflow()["jobs"]
    _, build = matrix_job()
    match = re.fullmatch(
        r"\$\{\{\s*fromJSON\(needs\.(\w+)\.outputs\.(\w+)\)\s*\}\}", build["strategy"]["matrix"]
    )
    assert match, (
        f"the job matrix must be fromJSON(needs.<job>.outputs.<name>), not {build['strategy']['matrix']!r}"
    )
    plan_name, output = match.groups()
    needs = build["needs"]
    assert plan_name in ([needs] if isinstance(needs, str) else needs)
    plan = jobs[plan_name]
    step_ref = re.fullmatch(
        r"\$\{\{\s*steps\.([\w-]+)\.outputs\.(\w+)\s*\}\}", plan["outputs"][output]
    )
    assert step_ref
    step = next(s for s in plan["steps"] if s.get("id") == step_ref.group(1))
    assert re.search(r"\$\(invoke matrix --json\)", step["run"])
    assert f"{step_ref.group(2)}=" in step["run"] and "$GITHUB_OUTPUT" in step["run"]


def test_no_entry_is_written_out_by_hand() -> None:
    text = WORKFLOW.read_text()
    for e in entries():
        names = [value for r in e["recipes"] for value in (r["zip"], r["layer"])]
        for value in (e["session"], e["artifact"], *names):
            assert value not in text, f"{value!r} is hard-coded in {WORKFLOW.name}"
    for job in workflow()["jobs"].values():
        matrix = job.get("strategy", {}).get("matrix")
        assert matrix is None or isinstance(matrix, str), "a literal matrix in the workflow"


def test_each_job_runs_its_entrys_nox_session_on_its_runner() -> None:
    _, build = matrix_job()
    assert build["runs-on"] == "${{ matrix.runner }}"
    env = build["env"]
    assert env["GDAL_LAMBDA_TARGET"] == "${{ matrix.target }}"
    assert env["GDAL_LAMBDA_PYTHON"] == "${{ matrix.python }}"
    runs = [s["run"] for s in build["steps"] if "run" in s]
    session_var = next(k for k, v in env.items() if v == "${{ matrix.session }}")
    assert any(re.fullmatch(rf'nox -s "\${session_var}"', r.strip()) for r in runs), runs
    upload = next(
        s for s in build["steps"] if s.get("uses", "").startswith("actions/upload-artifact@")
    )
    assert upload["with"]["path"] == "${{ matrix.zips }}"
    # the artifact is named after the entry's own artifact name (and whether it is published)
    for published in (True, False):
        e = entry(publish=published)
        assert render(upload["with"]["name"], context(matrix=e)).endswith(e["artifact"])
        assert render(build["name"], context(matrix=e)).startswith(e["artifact"] + " ")
    assert upload["with"]["if-no-files-found"] == "error"
    cache = next(
        s for s in build["steps"] if s.get("uses", "").startswith("actions/cache/restore@")
    )
    assert cache["with"]["path"] == "~/.cache/gdal-lambda"
    assert "hashFiles('matrix.toml')" in cache["with"]["key"]


def test_x86_64_sessions_exist_in_noxfile() -> None:
    sessions = nox_sessions()
    wanted = {e["session"] for e in entries() if e["arch"] == "x86_64"}
    assert wanted and wanted <= sessions, sorted(wanted - sessions)


def test_arm64_sessions_exist_in_noxfile() -> None:
    """Every arm64 entry of the release matrix has its session (test-<line>-arm64)."""
    sessions = nox_sessions()
    wanted = {e["session"] for e in entries() if e["arch"] == "arm64"}
    assert wanted and wanted <= sessions, sorted(wanted - sessions)


def test_the_recorder_sees_what_nox_sees() -> None:
    # the recording stand-in must find the sessions the docstring of noxfile.py promises
    assert {"tests", "lint", "test-3.13", "test-3.10"} <= nox_sessions()


def test_publish_only_on_a_tag_under_an_oidc_role() -> None:
    wf = workflow()
    assert wf["on"]["push"] == {"tags": ["v*"]}
    assert wf["permissions"] == {"contents": "read"}
    job = publish_job()
    assert job["if"] == "github.event_name == 'push' && startsWith(github.ref, 'refs/tags/v')"
    assert matrix_job()[0] in job["needs"]
    assert job["permissions"]["id-token"] == "write"
    creds = next(
        s
        for s in job["steps"]
        if s.get("uses", "").startswith("aws-actions/configure-aws-credentials@")
    )
    assert re.fullmatch(r"\$\{\{\s*(vars|secrets)\.\w+\s*\}\}", creds["with"]["role-to-assume"])
    text = WORKFLOW.read_text()
    assert "aws-access-key-id" not in text and "AWS_SECRET_ACCESS_KEY" not in text
    script = next(s["run"] for s in job["steps"] if "invoke publish" in s.get("run", ""))
    for option in ("--gdal", "--python", "--arch", "--target", "--recipe", "--zip"):
        assert option in script
    download = next(
        s for s in job["steps"] if s.get("uses", "").startswith("actions/download-artifact@")
    )
    assert download["with"] == {"pattern": "publish-*", "path": "dist", "merge-multiple": True}


def test_docker_images_are_restored_before_the_session_and_saved_after(tmp_path: Path) -> None:
    _, build = matrix_job()
    steps = build["steps"]
    nox_at, test_at = build_and_test_steps(tmp_path)
    # both sessions build, the test session from the images the build session made
    for i in (nox_at, test_at):
        assert steps[i]["env"]["GDAL_LAMBDA_CACHE_FROM"] == "1"

    def at(prefix: str, kind: str) -> tuple[int, dict[str, Any]]:
        found = [
            (i, s)
            for i, s in enumerate(steps)
            if s.get("uses", "").startswith(prefix)
            and s["with"]["key"].startswith(f"${{{{ matrix.{kind}_cache }}}}/")
        ]
        assert len(found) == 1, (prefix, kind, found)
        return found[0]

    load_at = next(i for i, s in enumerate(steps) if "docker load" in s.get("run", ""))
    save_at = next(i for i, s in enumerate(steps) if "docker save" in s.get("run", ""))
    for kind in ("gdal", "python"):
        restore_i, restore = at("actions/cache/restore@", kind)
        save_i, save = at("actions/cache/save@", kind)
        assert restore_i < load_at < nox_at < save_at < save_i < test_at
        assert restore["with"]["restore-keys"] == f"${{{{ matrix.{kind}_cache }}}}/"
        assert (restore["with"]["key"], restore["with"]["path"]) == (
            save["with"]["key"],
            save["with"]["path"],
        )
        # the key ends in the hash of every build input
        assert "steps.inputs.outputs.hash" in save["with"]["key"]
        # a cache restored with this very key already holds these images
        assert f"steps.{restore['id']}.outputs.cache-hit != 'true'" in save["if"]
        # what is saved is the entry's own list of images, read from the matrix
        images = f"${{{{ matrix.{kind}_images }}}}"
        assert images in steps[save_at]["env"].values()
    inputs = next(s for s in steps if s.get("id") == "inputs")
    for path in ("matrix.toml", "docker/**", "scripts/**", "layers/**"):
        assert f"'{path}'" in inputs["run"], path


def test_a_weekly_dry_run_keeps_the_caches_from_eviction() -> None:
    # GitHub drops a cache unused for 7 days; the scheduled run restores (so keeps) every one
    wf = workflow()
    crons = [entry["cron"] for entry in wf["on"]["schedule"]]
    assert len(crons) == 1
    day_of_week = crons[0].split()[4]
    assert day_of_week != "*" and "," not in day_of_week, "once a week, at most 7 days apart"


def test_the_matrix_marks_each_entry_published_or_checked_only() -> None:
    # the workflow reads `publish` of every entry: true for the release target's entries
    found = entries()
    assert all(isinstance(e.get("publish"), bool) for e in found), found
    published = {e["target"] for e in found if e["publish"]}
    checked = {e["target"] for e in found if not e["publish"]}
    assert len(published) == 1 and checked and not published & checked, (published, checked)


def test_every_build_session_exists_in_noxfile(tmp_path: Path) -> None:
    # the build step derives the build session from the entry's test session; it must exist
    sessions = nox_sessions()
    build_at, _ = build_and_test_steps(tmp_path)
    step = matrix_job()[1]["steps"][build_at]
    for session in sorted({e["session"] for e in entries()}):
        built = session_run_by(step, session, tmp_path)
        assert built == "build-" + session.removeprefix("test-"), (session, built)
        assert built in sessions, (built, sorted(sessions))
    # a session that is not test-...: the step fails instead of running something else
    result, calls = run_step(step["run"], tmp_path, {"SESSION": "lint"})
    assert result.returncode != 0 and calls == [], (result, calls)


def test_publish_runs_only_on_a_push_of_a_v_tag() -> None:
    job = publish_job()
    cases = {
        ("push", "refs/tags/v2026.11.0"): True,
        ("workflow_dispatch", "refs/tags/v2026.11.0"): False,
        ("schedule", "refs/heads/main"): False,
        ("workflow_dispatch", "refs/heads/main"): False,
        ("push", "refs/heads/main"): False,
        ("push", "refs/tags/nightly"): False,
    }
    for (event, ref), wanted in cases.items():
        assert condition(job["if"], context(event=event, ref=ref)) is wanted, (event, ref)
    # and never after a failed build, lint or plan
    assert not condition(job["if"], context(ref="refs/tags/v1", status="failure"))


def test_no_cache_is_saved_from_a_tag_run() -> None:
    saves = cache_save_steps()
    assert len([s for _, s in saves if "uses" in s]) >= 3, "GDAL, Python and source caches"
    for _, step in saves:
        for event in ("push", "workflow_dispatch"):
            tag = context(event=event, ref="refs/tags/v2026.11.0", matrix=entry())
            assert not condition(step.get("if"), tag), (event, step)
        for event in ("schedule", "workflow_dispatch", "push"):
            branch = context(event=event, ref="refs/heads/main", matrix=entry())
            assert condition(step.get("if"), branch), (event, step)
    # actions/cache saves in its post step, unconditionally: restore and save are separate
    for job in workflow()["jobs"].values():
        for step in job["steps"]:
            assert not step.get("uses", "").startswith("actions/cache@"), step


def test_only_published_entries_save_docker_caches() -> None:
    # the floor's Docker caches fill most of the repository's 10 GB: the checked-only
    # entries' would evict them
    docker = [
        s
        for _, s in cache_save_steps()
        if "docker save" in s.get("run", "") or "_cache }}" in s["with"]["key"]
    ]
    assert len(docker) == 3, "docker save, the GDAL and the Python cache"
    for step in docker:
        checked = context(ref="refs/heads/main", matrix=entry(publish=False, target="al2023"))
        assert not condition(step.get("if"), checked), step
        assert condition(step.get("if"), context(ref="refs/heads/main", matrix=entry())), step


def test_caches_are_saved_after_the_build_session_before_the_tests(tmp_path: Path) -> None:
    _, build = matrix_job()
    build_at, test_at = build_and_test_steps(tmp_path)
    saves = cache_save_steps()
    assert saves
    for i, step in saves:
        assert build_at < i < test_at, (build_at, i, test_at, step)
    # the zip uploaded is one whose tests passed
    uploads = [
        i
        for i, s in enumerate(build["steps"])
        if s.get("uses", "").startswith("actions/upload-artifact@")
    ]
    assert uploads and all(i > test_at for i in uploads)


def test_every_artifact_upload_overwrites() -> None:
    # a re-run uploads again under the same name: without overwrite it fails with 409
    uploads = [
        s
        for job in workflow()["jobs"].values()
        for s in job["steps"]
        if s.get("uses", "").startswith("actions/upload-artifact@")
    ]
    assert len(uploads) >= 2, "the zips and the layer manifest"
    for step in uploads:
        assert step["with"].get("overwrite") is True, step


def test_publish_publishes_every_recipe_of_the_entries_marked_publish(tmp_path: Path) -> None:
    if shutil.which("jq") is None:
        pytest.skip("jq is not installed (GitHub's runners have it)")
    job = publish_job()
    floor = entry()
    floor_arm = entry(
        arch="arm64", session="test-3.13-arm64", suffix="-arm64", runner="ubuntu-24.04-arm"
    )
    checked = entry(target="al2023", python="3.12", stem="gdal3.13-py3.12-al2023", publish=False)
    # only the published entries' artifacts are downloaded
    _, build = matrix_job()
    upload = next(
        s for s in build["steps"] if s.get("uses", "").startswith("actions/upload-artifact@")
    )
    download = next(
        s for s in job["steps"] if s.get("uses", "").startswith("actions/download-artifact@")
    )
    pattern = download["with"]["pattern"]
    for e in (floor, floor_arm, checked):
        name = render(upload["with"]["name"], context(matrix=e))
        assert fnmatch.fnmatchcase(name, pattern) is e["publish"], (name, pattern)
    # the downloaded zips, in dist/ where the publish job looks for them
    (tmp_path / "dist").mkdir()
    for e in (floor, floor_arm):
        for r in e["recipes"]:
            (tmp_path / r["zip"]).write_bytes(b"PK")
    # and only they are published, every recipe of each
    script = next(s["run"] for s in job["steps"] if "invoke publish" in s.get("run", ""))
    matrix = json.dumps({"include": [floor, checked, floor_arm]})
    result, calls = run_step(
        script, tmp_path, {"MATRIX": matrix, "PUBLIC": "true"}, fakes=("invoke",)
    )
    assert result.returncode == 0, result.stderr
    wanted = [(e, r) for e in (floor, floor_arm) for r in e["recipes"]]
    assert len(calls) == len(wanted) == 4, calls
    for call, (e, r) in zip(calls, wanted, strict=True):
        assert call.startswith("invoke publish "), call
        for option in ("--gdal", "--python", "--arch", "--target", "--recipe", "--zip"):
            field = {"--gdal": "line"}.get(option, option.removeprefix("--"))
            value = r[field] if field in r else e[field]
            assert f"{option} {value} " in f"{call} ", (option, call)
        assert call.endswith(" --public"), call
    # a matrix with nothing to publish is an error, not a release of nothing
    nothing = json.dumps({"include": [checked]})
    result, calls = run_step(script, tmp_path, {"MATRIX": nothing, "PUBLIC": ""}, ("invoke",))
    assert result.returncode != 0 and calls == [], (result, calls)
    # so is a published entry that lists no recipe
    bare = json.dumps({"include": [floor, {**floor_arm, "recipes": []}]})
    result, calls = run_step(script, tmp_path, {"MATRIX": bare, "PUBLIC": ""}, ("invoke",))
    assert result.returncode != 0 and calls == [], (result, calls)
    assert "lists no recipe" in result.stderr, result.stderr
    # a zip that was not downloaded stops the release before any layer is published
    (tmp_path / floor_arm["recipes"][1]["zip"]).unlink()
    result, calls = run_step(script, tmp_path, {"MATRIX": matrix, "PUBLIC": ""}, ("invoke",))
    assert result.returncode != 0 and calls == [], (result, calls)
    assert floor_arm["recipes"][1]["zip"] in result.stdout, result.stdout


def test_the_artifact_carries_every_zip_and_downloads_where_publish_reads(
    tmp_path: Path,
) -> None:
    _, build = matrix_job()
    steps = build["steps"]
    upload_at, upload = next(
        (i, s)
        for i, s in enumerate(steps)
        if s.get("uses", "").startswith("actions/upload-artifact@")
    )
    download = next(
        s
        for s in publish_job()["steps"]
        if s.get("uses", "").startswith("actions/download-artifact@")
    )
    for e in entries():
        paths = render(upload["with"]["path"], context(matrix=e)).splitlines()
        assert paths == [r["zip"] for r in e["recipes"]] and len(paths) >= 2, paths
        # several paths: the artifact's root is their common folder, so they must share the
        # folder the publish job downloads into for each to land where `zip` says
        assert {str(Path(p).parent) for p in paths} == {download["with"]["path"]}, paths
    # a step before the upload fails when a recipe's zip is missing (if-no-files-found only
    # fails when no path at all matched)
    _, test_at = build_and_test_steps(tmp_path)
    checks = [
        (i, s)
        for i, s in enumerate(steps)
        if "run" in s and "${{ matrix.zips }}" in s.get("env", {}).values()
    ]
    assert len(checks) == 1, checks
    check_at, check = checks[0]
    assert test_at < check_at < upload_at
    e = entry()
    env = {k: _text(render(v, context(matrix=e))) for k, v in check["env"].items()}
    (tmp_path / "dist").mkdir()
    for r in e["recipes"]:
        (tmp_path / r["zip"]).write_bytes(b"PK")
    result, _ = run_step(check["run"], tmp_path, env, fakes=())
    assert result.returncode == 0, result.stderr
    missing = e["recipes"][1]["zip"]
    (tmp_path / missing).unlink()
    result, _ = run_step(check["run"], tmp_path, env, fakes=())
    assert result.returncode != 0 and missing in result.stdout, result


def test_docker_save_saves_every_recipes_layer_image(tmp_path: Path) -> None:
    _, build = matrix_job()
    save = next(s for s in build["steps"] if "docker save" in s.get("run", ""))
    e = next(e for e in entries() if e["publish"])
    env = {k: _text(render(v, context(matrix=e))) for k, v in save["env"].items()}
    result, calls = run_step(
        save["run"], tmp_path, {**env, "RUNNER_TEMP": str(tmp_path)}, fakes=("docker", "zstd")
    )
    assert result.returncode == 0, result.stderr
    saved = [call.removeprefix("docker save ").split() for call in calls if "docker" in call]
    assert saved == [e["gdal_images"].split(), e["python_images"].split()], calls
    # the Python cache holds every recipe's layer image (the names: tests/fast/test_release.py)
    for r in e["recipes"]:
        assert any(f"-{r['recipe']}" in tag for tag in saved[1]), (r, saved)


def test_the_release_builds_the_recipes_noxfile_builds() -> None:
    """A job uploads, caches and publishes what its nox session built: noxfile.py's RECIPES,
    in the order the matrix lists them (each recipe after the one it extends)."""
    built = noxfile()[1]["RECIPES"]
    assert built == [r.name for r in recipes.every()]
    for e in entries():
        assert [r["recipe"] for r in e["recipes"]] == built


def test_a_checked_only_entry_is_reported_and_cannot_block_publishing(tmp_path: Path) -> None:
    _, build = matrix_job()
    coe = build["continue-on-error"]
    assert isinstance(coe, str) and "matrix.publish" in coe, coe
    # a checked-only job's failure counts as passed for `needs`; a published entry's does not
    assert _truthy(render(coe, context(matrix=entry(publish=False))))
    assert not _truthy(render(coe, context(matrix=entry(publish=True))))
    assert "checked only" in render(build["name"], context(matrix=entry(publish=False)))
    assert "checked only" not in render(build["name"], context(matrix=entry(publish=True)))
    # a step writes the checked-only entry's result to the job summary, failed or passed
    reports = [s for s in build["steps"] if "GITHUB_STEP_SUMMARY" in s.get("run", "")]
    assert len(reports) == 1, reports
    report = reports[0]
    for status in ("success", "failure"):
        checked = context(matrix=entry(publish=False, target="al2023"), status=status)
        assert condition(report.get("if"), checked), status
        published = context(matrix=entry(publish=True), status=status)
        assert not condition(report.get("if"), published), status
        summary = tmp_path / f"summary-{status}.md"
        env = {k: _text(render(v, checked)) for k, v in report.get("env", {}).items()}
        result, _ = run_step(
            report["run"], tmp_path, {**env, "GITHUB_STEP_SUMMARY": str(summary)}, fakes=()
        )
        assert result.returncode == 0, result.stderr
        line = summary.read_text()
        assert "gdal313-py313-geo," in line and "gdal313-py313-geopandas" in line, line
        assert "al2023" in line, line
        assert ("passed" in line) is (status == "success"), line
        assert ("failed" in line) is (status == "failure"), line
