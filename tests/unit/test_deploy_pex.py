"""The deploy tool as one file (tools/build_deploy_pex.py): built twice to the same bytes, then run with a deployed
stack's own runtime, without network (a new network namespace) and without Bazel, to update that stack."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from stacktool.deploy_source import open_source
from stacktool.deploy_target import Target, install
from test_deploy_target import app_v2_stack, publish_stack, run_app

ROOT = Path(__file__).resolve().parents[2]
BARE_PATH = "/usr/bin:/bin"


def build(out: Path) -> str:
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "build_deploy_pex.py"), "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return hashlib.sha256(out.read_bytes()).hexdigest()


def test_the_pex_updates_a_stack_with_its_own_runtime_offline(published_stack, kit, published_runtime, tmp_path):
    if subprocess.run(["unshare", "-n", "true"], check=False).returncode != 0:
        pytest.skip("cannot make a network namespace here (unshare -n)")
    assert shutil.which("bazel", path=BARE_PATH) is None
    pex = tmp_path / "deploy.pex"
    assert build(pex) == build(tmp_path / "again.pex")  # reproducible
    v1 = publish_stack(published_stack, tmp_path / "v1")
    v2 = publish_stack(app_v2_stack(kit, published_runtime, published_stack, tmp_path / "app"), tmp_path / "v2")
    target = tmp_path / "target"
    install(Target(target), open_source(str(v1), None), update=False)
    runtime = target / "current" / "cpython3_11" / "bin" / "python3"
    offline = ["unshare", "-n", "env", "-i", f"PATH={BARE_PATH}", f"HOME={tmp_path}", f"PEX_ROOT={tmp_path / 'pex'}"]
    update = [*offline, str(runtime), str(pex), "update", str(v2), "--target", str(target)]
    result = subprocess.run(update, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "unpacked app-hello: " in result.stdout and "version 2 is active" in result.stdout
    assert "hello, version 2" in run_app(target)
    listing = subprocess.run(
        [*offline, str(runtime), str(pex), "list", "--target", str(target)], capture_output=True, text=True
    )
    assert listing.returncode == 0 and "*   2" in listing.stdout
    bad = subprocess.run(
        [*offline, str(runtime), str(pex), "rollback", "--target", str(tmp_path / "nothing")],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 1 and bad.stderr.startswith("error: ") and "no deploy target there" in bad.stderr
