"""The venvstacks importer end to end: tests/e2e/workspaces/venvstacks_project (a venvstacks 0.8 project and a
MODULE.bazel that only depends on rules_venvstacks) converted with
`bazel run @rules_venvstacks//tools:import_venvstacks`, then locked, built, run and tested with the README's
commands; re-imported unchanged (nothing written) and changed (the generated block updated, a hand-written target
kept); unsupported keys refused with their messages.

One copy of the workspace (one Bazel server) serves every case, in the order they are written.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import WORKSPACES, Workspace, copy_workspace

IMPORT = ("run", "@rules_venvstacks//tools:import_venvstacks", "--", "venvstacks.toml", "--package", "stacks")
PYTHON_FRAME = re.compile(r'File "[^"]+\.py", line \d+, in ')


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    base = tmp_path_factory.mktemp("importer")
    workspace = copy_workspace(WORKSPACES / "venvstacks_project", base / "ws", base / "output_base")
    yield workspace
    workspace.discard()


def sources(root: Path) -> dict[str, bytes]:
    """Every file of the workspace but Bazel's convenience links, by relative path."""
    files = {}
    for directory, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith("bazel-")]
        for name in filenames:
            path = Path(directory, name)
            files[path.relative_to(root).as_posix()] = path.read_bytes()
    return files


def test_imported_project_locks_builds_runs_and_tests(ws: Workspace) -> None:
    result = ws.bazel(*IMPORT)
    assert result.stdout.splitlines() == [
        "wrote MODULE.bazel",
        "wrote stacks/BUILD.bazel",
        "wrote stacks/launch_modules/hello.py",
        "wrote stacks/launch_modules/report/__init__.py",
        "wrote stacks/launch_modules/report/__main__.py",
        "wrote stacks/support_modules/stack_info.py",
        'MODULE.bazel: added venvstacks = use_extension("@rules_venvstacks//rules:extensions.bzl", "venvstacks")',
        'MODULE.bazel: added venvstacks.lock_file(path = "//stacks:venvstacks_lock.json")',
        "next: bazel run //stacks:lock, then bazel build //stacks:all and bazel test //stacks:all",
    ]
    assert "warning:" not in result.stderr  # the local runtime provides CPython 3.11.7

    ws.bazel("run", "//stacks:lock")
    ws.bazel("build", "//stacks:all")
    report = ws.bazel("run", "//stacks:report").stdout
    assert "layers: app-report@1 framework-tables framework-text@1 cpython-3.11\n" in report
    assert "idna       xn--bcher-kva.example" in report
    assert ws.bazel("run", "//stacks:hello").stdout == "hello from app-hello (packaging 24.2)\n"
    result = ws.bazel("test", "//stacks:all")
    tested = result.stdout + result.stderr
    for test in ("cpython-3.11", "text", "tables", "report", "hello", "lock"):
        assert re.search(rf"//stacks:{re.escape(test)}_test +(PASSED|\(cached\) PASSED)", tested), test
    assert re.search(r"//stacks:later_test +SKIPPED", tested)  # the disabled app


def test_reimport_of_the_unchanged_spec_changes_nothing(ws: Workspace) -> None:
    before = sources(ws.path)
    result = ws.bazel(*IMPORT)
    assert result.stdout.splitlines()[0] == "nothing changed: //stacks is up to date with the spec"
    assert sources(ws.path) == before


def test_reimport_of_a_changed_spec_keeps_hand_written_targets(ws: Workspace) -> None:
    build = ws.path / "stacks/BUILD.bazel"
    mine = '\n# Hand-written.\nalias(\n    name = "main_app",\n    actual = ":report",\n)\n'
    build.write_text(build.read_text() + mine)
    spec = ws.path / "venvstacks.toml"
    hello = 'runtime = "cpython-3.11"\nrequirements = []'  # the first app on the runtime
    spec.write_text(spec.read_text().replace(hello, hello.replace("[]", '["six==1.17.0"]'), 1))
    assert ws.bazel(*IMPORT).stdout.splitlines()[0] == "wrote stacks/BUILD.bazel"
    text = build.read_text()
    assert text.endswith("# END venvstacks import\n" + mine)
    assert (
        'name = "hello",\n    launch_module = "launch_modules/hello.py",\n    requirements = ["six==1.17.0"],' in text
    )
    stale = ws.bazel("test", "//stacks:lock_test", check=False)
    assert stale.returncode != 0
    assert "run `bazel run //stacks:lock`" in stale.stdout + stale.stderr
    ws.bazel("run", "//stacks:lock")
    assert ws.bazel("run", "//stacks:main_app").stdout.startswith("layers: app-report@1 ")
    ws.bazel("test", "//stacks:hello_test", "//stacks:lock_test")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            ('name = "text"\n', 'name = "text"\npackage_indexes = { six = "mirror" }\n'),
            "error: venvstacks.toml: framework 'text': key 'package_indexes' (the index of each package) is not "
            "supported yet (rules_venvstacks issue #11); remove it, or re-run the importer with --default-index to "
            "lock against the default index (PyPI) (nothing was written)",
        ),
        (
            ("[tool.uv]\n", '[tool.uv]\nindex-url = "https://mirror.invalid/simple"\n'),
            "error: venvstacks.toml: [tool.uv]: key 'index-url' (package index configuration) is not supported yet "
            "(rules_venvstacks issue #11); remove it, or re-run the importer with --default-index to lock against "
            "the default index (PyPI) (nothing was written)",
        ),
        (
            ('python_implementation = "cpython@3.11.7"', 'python_implementation = "pypy@3.10.16"'),
            "error: venvstacks.toml: runtime 'cpython-3.11': python_implementation 'pypy@3.10.16': PyPy runtimes are "
            "not supported (rules_venvstacks builds python-build-standalone CPython only); use a 'cpython@3.Y.Z' "
            "runtime (nothing was written)",
        ),
    ],
    ids=["package_indexes", "tool.uv index-url", "pypy"],
)
def test_unsupported_keys_are_refused(ws: Workspace, edit: tuple[str, str], message: str) -> None:
    spec = ws.path / "venvstacks.toml"
    before = sources(ws.path)
    original = spec.read_text()
    assert edit[0] in original
    spec.write_text(original.replace(edit[0], edit[1], 1))
    try:
        result = ws.bazel(*IMPORT, check=False)
    finally:
        spec.write_text(original)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [message]
    assert not PYTHON_FRAME.search(result.stderr)
    assert sources(ws.path) == before
