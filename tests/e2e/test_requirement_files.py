"""A layer's requirements from files (requirements.in-style, pyproject.toml with dependency groups), tracked by
Bazel: editing a file makes building the layer, and the lock's test, fail naming the lock target."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from harness import WORKSPACES, Workspace, copy_workspace

PYPROJECT = """\
[project]
name = "hello-app"
version = "1.0"
dependencies = ["six"]

[dependency-groups]
cli = ["tabulate==0.9.0"]
extra = [{include-group = "cli"}, "idna==3.10"]
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    """The small stack, its framework's requirements in two files (one includes the other), its app's in a
    pyproject.toml with a dependency group that includes another."""
    base = tmp_path_factory.mktemp("requirement_files")
    ws = copy_workspace(WORKSPACES / "small_stack", base / "ws", base / "output_base")
    stacks = ws.path / "stacks"
    (stacks / "common.in").write_text("six==1.16.0  # the framework's pin\n")
    (stacks / "base.in").write_text("# framework requirements\n-r common.in\nattrs==25.3.0\n")
    (stacks / "pyproject.toml").write_text(PYPROJECT)
    build = (stacks / "BUILD.bazel").read_text()
    build = build.replace('requirements = ["six==1.16.0"],', 'requirements_files = ["base.in", "common.in"],')
    build = build.replace(
        'requirements = ["six"],', 'dependency_groups = ["extra"],\n    requirements_files = ["pyproject.toml"],'
    )
    (stacks / "BUILD.bazel").write_text(build)
    ws.bazel("run", "//stacks:lock")
    yield ws
    ws.discard()


def wheels(ws: Workspace, layer: str) -> list[str]:
    index = json.loads((ws.path / "stacks" / "venvstacks_lock.json").read_text())
    return sorted(f"{w['name']}=={w['version']}" for w in index["layers"][layer]["wheels"]["linux_x86_64"])


def test_requirements_come_from_the_files(stack: Workspace) -> None:
    assert wheels(stack, "stacks:base") == ["attrs==25.3.0", "six==1.16.0"]
    assert wheels(stack, "stacks:hello") == ["idna==3.10", "tabulate==0.9.0"]  # six from the framework
    index = json.loads((stack.path / "stacks" / "venvstacks_lock.json").read_text())
    assert sorted(index["layers"]["stacks:base"]["requirements_files"]) == ["stacks/base.in", "stacks/common.in"]
    assert "hello from six 1.16.0" in stack.bazel("run", "//stacks:hello").stdout
    stack.bazel("test", "//stacks:lock_test")


def test_editing_a_requirements_file_makes_the_lock_stale(stack: Workspace) -> None:
    common = stack.path / "stacks" / "common.in"
    original = common.read_text()
    common.write_text(original.replace("six==1.16.0", "six==1.17.0"))
    try:
        build = stack.bazel("build", "//stacks:base", check=False)
        test = stack.bazel("test", "//stacks:lock_test", check=False)
    finally:
        common.write_text(original)
    assert build.returncode != 0
    assert "stacks/common.in changed after //stacks:lock locked it" in build.stderr
    assert "run `bazel run //stacks:lock`" in build.stderr
    assert test.returncode == 3
    log = (stack.path / "bazel-testlogs" / "stacks" / "lock_test" / "test.log").read_text()
    assert "stacks/common.in changed after //stacks:lock locked it" in log


def test_include_not_listed_and_unsupported_options_are_refused(stack: Workspace) -> None:
    base = stack.path / "stacks" / "base.in"
    original = base.read_text()
    try:
        base.write_text(original + "-r more.in\n")
        unlisted = stack.bazel("run", "//stacks:lock", check=False)
        base.write_text(original + "--index-url https://example.invalid/simple\n")
        option = stack.bazel("run", "//stacks:lock", check=False)
    finally:
        base.write_text(original)
    assert unlisted.returncode != 0
    assert (
        "stacks/base.in:4 includes more.in: list stacks/more.in in the layer's `requirements_files` too"
        in unlisted.stderr
    )
    assert option.returncode != 0
    assert "stacks/base.in:4: option '--index-url' is not supported in requirements files" in option.stderr
    assert "Traceback" not in unlisted.stderr + option.stderr
