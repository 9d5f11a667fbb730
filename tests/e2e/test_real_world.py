"""Stacks written the way venvstacks' users write them (tests/e2e/workspaces/real_world), with real packages from
PyPI that trip naive layer tools: each test names the venvstacks behaviour it holds this project to."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from harness import WORKSPACES, Workspace, copy_workspace

BUILT = "bazel-bin/stacks"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Workspace, str, str]]:
    """The workspace locked, built (every target) and tested; yields it with the build's and the tests' output."""
    base = tmp_path_factory.mktemp("real_world")
    ws = copy_workspace(WORKSPACES / "real_world", base / "ws", base / "output_base")
    try:
        ws.bazel("run", "//stacks:lock")
        build = ws.bazel("build", "//stacks:all", "--output_groups=+trees")
        test = ws.bazel("test", "//stacks:all", "--test_output=all", check=False)
        yield ws, build.stderr, test.stdout + test.stderr
    finally:
        ws.discard()


def test_runtime_layer_ships_no_installer(stack: tuple[Workspace, str, str]) -> None:
    """venvstacks removes pip, setuptools and wheel and every script but python* from the runtime it publishes."""
    ws, _, tests = stack
    runtime = ws.path / BUILT / "cpython.layer" / "cpython"
    site = runtime / "lib" / "python3.11" / "site-packages"
    assert not list(site.glob("pip*")), sorted(p.name for p in site.iterdir())
    assert sorted(p.name for p in (runtime / "bin").iterdir()) == ["python", "python3", "python3.11"]
    assert "//stacks:notebook_test" in tests and "pip is importable" not in tests  # the app checks it itself


def test_layer_for_other_platforms_is_skipped_on_this_host(stack: tuple[Workspace, str, str]) -> None:
    """`bazel build //stacks:all` on Linux skips an app limited to win_amd64 (and its test) as incompatible."""
    ws, _, tests = stack
    assert not (ws.path / BUILT / "windows_only.layer").exists()
    assert "//stacks:windows_only_test" in tests and "SKIPPED" in tests.split("//stacks:windows_only_test")[1][:80]
    index = json.loads((ws.path / "stacks" / "venvstacks_lock.json").read_text())
    assert sorted(index["layers"]["stacks:windows_only"]["wheels"]) == ["win_amd64"]  # still locked for Windows


def test_upper_layer_targets_the_newest_lower_glibc(stack: tuple[Workspace, str, str]) -> None:
    """An app over a glibc 2.28 framework and a glibc 2.35 one (MLX) locks for 2.35, MLX taken from its framework."""
    ws, _, _ = stack
    layers = json.loads((ws.path / "stacks" / "venvstacks_lock.json").read_text())["layers"]
    assert layers["stacks:notebook"]["inputs"]["linux_target"] == "glibc@2.35"
    assert layers["stacks:shell"]["inputs"]["linux_target"] == "glibc@2.28"
    assert not [w for w in layers["stacks:notebook"]["wheels"]["linux_x86_64"] if w["name"].startswith("mlx")]
    assert [w["version"] for w in layers["stacks:mlx"]["wheels"]["linux_x86_64"] if w["name"] == "mlx"] == ["0.29.0"]


def test_wheel_with_a_malformed_record_entry_installs_with_a_warning(stack: tuple[Workspace, str, str]) -> None:
    """MLX 0.29.0's Linux wheel lists a hash without `sha256=` in its RECORD; uv, pip and venvstacks install it."""
    _, build, tests = stack
    assert "mlx-0.29.0-cp311-cp311-manylinux_2_35_x86_64.whl: RECORD entry for mlx/core.cpython-311" in build
    assert "its hash is not checked" in build
    assert "IPython 8.37.0, MLX 0.29.0: sum = 6.0" in tests


def test_optional_dependency_not_installed_does_not_fail_the_layer_test(stack: tuple[Workspace, str, str]) -> None:
    """IPython depends on matplotlib-inline, whose module imports matplotlib, which nothing requires: the layer test
    notes it and passes, while every other module is imported."""
    ws, _, tests = stack
    log = (ws.path / "bazel-testlogs" / "stacks" / "shell_test" / "test.log").read_text(errors="replace")
    assert "import matplotlib_inline: skipped" in log
    assert "note: matplotlib_inline needs matplotlib, which no layer installs" in log
    assert "import IPython: ok" in log and "import traitlets: ok" in log
    assert "5 tests pass and 1 was skipped" in tests, tests[-3000:]


def test_a_missing_module_the_stack_provides_still_fails_the_layer_test(stack: tuple[Workspace, str, str]) -> None:
    """The tolerance is for optional dependencies only: an app importing a module no layer has fails its test."""
    ws, _, _ = stack
    launch = ws.path / "stacks" / "notebook.py"
    original = launch.read_text()
    launch.write_text(original.replace("import IPython\n", "import IPython\nimport not_installed_anywhere\n"))
    try:
        result = ws.bazel("test", "//stacks:notebook_test", check=False)
    finally:
        launch.write_text(original)
    assert result.returncode != 0
    log = (ws.path / "bazel-testlogs" / "stacks" / "notebook_test" / "test.log").read_text(errors="replace")
    assert "launch module notebook exited with 1" in log and "not_installed_anywhere" in log
