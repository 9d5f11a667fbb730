"""Deploy as a product, end to end with a real Bazel on a copy of examples/sklearn (two apps over one framework):
publish version 1, install it into a deploy target, publish version 2 with one app changed, update (only that app's
layer unpacked), run both apps, roll back, run them again, gc keeps exactly what the kept version needs."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import EXAMPLES, Workspace, copy_workspace

APPS = {"app-classify": "test accuracy", "app-cluster": "3 clusters, sizes"}


@pytest.fixture(scope="module")
def sklearn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    base = tmp_path_factory.mktemp("deploy-product")
    ws = copy_workspace(EXAMPLES / "sklearn", base / "sklearn", base / "output_base")
    try:
        yield ws
    finally:
        ws.discard()


def deploy(ws: Workspace, *args: str) -> str:
    return ws.bazel("run", "@rules_venvstacks//rules:deploy", "--", *args).stdout


def run_apps(target: Path) -> None:
    """Starts both apps from the target's active version; each prints what it computed."""
    summary = json.loads((target / "current" / "stack.json").read_text())
    modules = {layer["install_target"]: layer["app_launch_module"] for layer in summary["layers"]}
    for app, expected in APPS.items():
        python = target / "current" / app / "bin" / "python"
        run = subprocess.run([str(python), "-m", modules[app]], capture_output=True, text=True, check=False)
        assert run.returncode == 0, run.stderr
        assert expected in run.stdout, run.stdout


def slots(target: Path) -> set[str]:
    return {p.name for p in (target / "layers").iterdir()}


def test_install_update_rollback_gc(sklearn: Workspace, tmp_path: Path) -> None:
    v1, v2, target = tmp_path / "v1", tmp_path / "v2", tmp_path / "target ü"
    sklearn.bazel("run", "//stacks:release.publish", "--", str(v1))
    installed = deploy(sklearn, "install", str(v1), "--target", str(target))
    assert "unpacked cpython3_11, framework-sklearn, app-classify, app-cluster: " in installed
    run_apps(target)
    first = slots(target)

    launch = sklearn.path / "stacks" / "classify_iris.py"
    launch.write_text(launch.read_text() + "\n# version 2: an app-only change\n")
    sklearn.bazel("run", "//stacks:release.publish", "--", str(v2))
    updated = deploy(sklearn, "update", str(v2), "--target", str(target))
    assert "unpacked app-classify: " in updated, updated  # the only layer unpacked
    assert "reused cpython3_11, framework-sklearn, app-cluster" in updated
    assert "version 2 is active" in updated
    assert len(slots(target) - first) == 1
    run_apps(target)

    rolled = deploy(sklearn, "rollback", "--target", str(target))
    assert "version 1 is active" in rolled and "nothing unpacked" in rolled
    assert (target / "current").resolve() == target / "versions" / "1"
    run_apps(target)

    listing = json.loads(deploy(sklearn, "list", "--target", str(target), "--json"))
    assert [(v["version"], v["current"]) for v in listing] == [(1, True), (2, False)]
    collected = deploy(sklearn, "gc", "--keep", "1", "--target", str(target))
    assert "removed versions: 2" in collected
    needed = {layer["slot"] for layer in listing[0]["layers"]}
    assert slots(target) == needed == first  # exactly the layers version 1 uses
    run_apps(target)
