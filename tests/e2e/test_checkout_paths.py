"""Where checkouts live: a path with a space and a non-ASCII letter (as users' home directories have), and two
checkouts of one workspace side by side (their `bazel run` deployments must not share a directory)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from harness import EXAMPLES, ROOT, Workspace, copy_workspace

LAUNCH_MODULE = "stacks/report_mlx_version.py"


def copy_checkout(dest: Path) -> Path:
    """This checkout's files as git sees them (tracked and new, not ignored) at `dest`, as a git work tree."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for relative in filter(None, listed):
        source = ROOT / relative
        if source.is_file():
            (dest / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / relative, follow_symlinks=False)
    subprocess.run(["git", "init", "-q", str(dest)], check=True)  # tools/bazel binds the work tree it is in
    return dest


def test_mlx_example_builds_and_runs_from_a_checkout_under_a_non_ascii_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "projé t"
    checkout = copy_checkout(home / "rules_venvstacks")
    monkeypatch.setenv("VENVSTACKS_RUN_DIR", str(home / "run"))
    ws = Workspace(checkout / "examples" / "mlx", home / "output base", launcher=checkout / "tools" / "bazel")
    try:
        result = ws.bazel("run", "//stacks:mlx_app", "--", "ünïcode")
    finally:
        ws.discard()
    assert "MLX 0.32.4 on Device(cpu, 0)" in result.stdout, result.stderr[-4000:]
    assert "arguments: ünïcode" in result.stdout


def test_two_checkouts_run_from_their_own_deployments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same label in two checkouts deploys to two directories: running one never replaces the other's layers."""
    run_dir = tmp_path / "run"
    monkeypatch.setenv("VENVSTACKS_RUN_DIR", str(run_dir))
    a = copy_workspace(EXAMPLES / "mlx", tmp_path / "a" / "mlx", tmp_path / "a.output_base")
    b = copy_workspace(EXAMPLES / "mlx", tmp_path / "b" / "mlx", tmp_path / "b.output_base")
    launch_b = b.path / LAUNCH_MODULE
    launch_b.write_text(launch_b.read_text().replace('print(f"MLX', 'print("checkout b")\n    print(f"MLX'))
    try:
        assert "checkout b" not in a.bazel("run", "//stacks:mlx_app").stdout
        assert "checkout b" in b.bazel("run", "//stacks:mlx_app").stdout
        deployed = sorted(run_dir.glob("app-mlx_app-*/app-mlx_app/lib/python3.11/site-packages/report_mlx_version.py"))
        assert len(deployed) == 2, deployed
        assert sorted(p.read_text() for p in deployed) == sorted(
            [(a.path / LAUNCH_MODULE).read_text(), launch_b.read_text()]
        )
    finally:
        a.discard()
        b.discard()
