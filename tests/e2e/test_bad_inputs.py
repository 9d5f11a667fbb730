"""Bad input: each case gives one clear error that names the target (or file) and the fix, and no partial output."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from harness import WORKSPACES, Workspace, copy_workspace
from stacktool.digest import sha256_of

EXTRA_LAYERS = """
runtime_layer(name = "other_runtime", platforms = ["linux_x86_64"], python = "3.11")

framework_layer(name = "other", requirements = ["six==1.16.0"], runtime = ":other_runtime")

application_layer(name = "mixed", frameworks = [":base", ":other"], launch_module = "hello.py")

framework_layer(name = "loop_a", frameworks = [":loop_b"])

framework_layer(name = "loop_b", frameworks = [":loop_a"])

framework_layer(name = "unlocked", runtime = ":cpython", requirements = ["six"])
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    base = tmp_path_factory.mktemp("bad_inputs")
    ws = copy_workspace(WORKSPACES / "small_stack", base / "ws", base / "output_base")
    ws.bazel("run", "//stacks:lock")
    ws.bazel("build", "//stacks:hello")
    yield ws
    ws.shutdown()


@contextmanager
def edited(path: Path, old: str, new: str) -> Iterator[None]:
    original = path.read_text()
    assert old in original, f"{old!r} not in {path}"
    path.write_text(original.replace(old, new, 1))
    try:
        yield
    finally:
        path.write_text(original)


def lock_files(ws: Workspace) -> dict[str, str]:
    stacks = ws.path / "stacks"
    return {p.name: sha256_of(p) for p in sorted([*stacks.glob("pylock.*.toml"), stacks / "venvstacks_lock.json"])}


def failing(ws: Workspace, *args: str) -> str:
    result = ws.bazel(*args, check=False)
    assert result.returncode != 0, f"bazel {' '.join(args)} succeeded"
    return result.stderr


def test_the_small_stack_runs_through_all_three_layers(stack: Workspace) -> None:
    assert (
        stack.bazel("run", "//stacks:hello").stdout
        == "hello from six 1.16.0 (framework) and packaging 24.2 (runtime)\n"
    )
    assert "3 tests pass" in stack.bazel("test", "//stacks:all").stdout


def test_unknown_lower_layer(stack: Workspace) -> None:
    with edited(stack.path / "stacks/BUILD.bazel", 'frameworks = [":base"]', 'frameworks = [":nope"]'):
        error = failing(stack, "build", "//stacks:hello")
    assert "in frameworks attribute of application_layer_rule rule //stacks:hello" in error
    assert "rule '//stacks:nope' does not exist" in error


def test_cycle_of_frameworks(stack: Workspace) -> None:
    with edited(stack.path / "stacks/BUILD.bazel", "stack_lock(", EXTRA_LAYERS + "\nstack_lock("):
        error = failing(stack, "build", "//stacks:loop_a")
    assert "cycle in dependency graph" in error
    assert "//stacks:loop_a" in error and "//stacks:loop_b" in error


def test_layers_on_different_runtimes(stack: Workspace) -> None:
    with edited(stack.path / "stacks/BUILD.bazel", "stack_lock(", EXTRA_LAYERS + "\nstack_lock("):
        error = failing(stack, "build", "//stacks:mixed")
    assert "//stacks:mixed: its frameworks sit on different runtimes" in error
    assert "one runtime layer" in error


def test_layer_missing_from_the_lock(stack: Workspace) -> None:
    with edited(stack.path / "stacks/BUILD.bazel", "stack_lock(", EXTRA_LAYERS + "\nstack_lock("):
        error = failing(stack, "build", "//stacks:unlocked")
    assert "//stacks:unlocked has no entry in any lock index" in error
    assert "bazel run" in error


def test_requirement_conflicting_with_a_framework_pin(stack: Workspace) -> None:
    before = lock_files(stack)
    with edited(stack.path / "stacks/BUILD.bazel", 'requirements = ["six"]', 'requirements = ["six==1.15.0"]'):
        error = failing(stack, "run", "//stacks:lock")
    assert "//stacks:hello: requirement 'six==1.15.0' conflicts with six==1.16.0" in error
    assert "framework-base" in error
    assert lock_files(stack) == before


def test_requirement_with_only_an_sdist(stack: Workspace) -> None:
    before = lock_files(stack)
    with edited(stack.path / "stacks/BUILD.bazel", 'requirements = ["six"]', 'requirements = ["sgmllib3k==1.0.0"]'):
        error = failing(stack, "run", "//stacks:lock")
    assert "//stacks:hello (linux_x86_64)" in error and "sgmllib3k" in error and "no usable wheels" in error
    assert lock_files(stack) == before


def test_malformed_requirement(stack: Workspace) -> None:
    before = lock_files(stack)
    with edited(stack.path / "stacks/BUILD.bazel", 'requirements = ["six"]', 'requirements = ["six=="]'):
        error = failing(stack, "run", "//stacks:lock")
    assert "//stacks:hello: requirement 'six==' is not a valid PEP 508 requirement" in error
    assert lock_files(stack) == before


def test_lock_that_no_longer_matches_the_requirements(stack: Workspace) -> None:
    archive = stack.path / "bazel-bin/stacks/hello.layer/app-hello-linux_x86_64.tar.zst"
    assert archive.exists()
    with edited(stack.path / "stacks/BUILD.bazel", 'requirements = ["six"]', 'requirements = ["six", "packaging"]'):
        error = failing(stack, "build", "//stacks:hello")
    assert "//stacks:hello changed since it was locked (requirements differ): run `bazel run //stacks:lock`" in error
    assert not archive.exists()


def test_wheel_whose_sha256_does_not_match(stack: Workspace) -> None:
    index = stack.path / "stacks/venvstacks_lock.json"
    six_sha256 = "8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254"  # six-1.16.0-py2.py3-none-any.whl
    with edited(index, six_sha256, "0" * 64):
        error = failing(stack, "build", "//stacks:base")
    assert "wheel six-1.16.0-py2.py3-none-any.whl from https://files.pythonhosted.org/" in error
    assert f"has sha256 {six_sha256}, but {'0' * 64} was expected" in error
    assert "bazel run //stacks:lock" in error


def test_launch_module_that_does_not_exist(stack: Workspace) -> None:
    with edited(stack.path / "stacks/BUILD.bazel", 'launch_module = "hello.py"', 'launch_module = "nope.py"'):
        error = failing(stack, "build", "//stacks:hello")
    assert '//stacks:hello: launch_module "nope.py" does not exist in stacks/; add the file or fix the name' in error
    assert "Composing" not in error  # found while loading, before any action ran
