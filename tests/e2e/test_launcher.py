"""tools/bazel: which Bazel it runs, and how it provisions, checks and repairs its offline root."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from harness import BAZEL

# Fails at once: nothing listens on port 9 of loopback.
UNREACHABLE_MIRROR = "http://127.0.0.1:9/debian"


def launcher(env: dict[str, str], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BAZEL), *args], env=env, cwd=cwd, capture_output=True, text=True, check=False)


def fake_bazel(directory: Path, version: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "bazel"
    script.write_text(
        f'#!/bin/sh\nif [ "$1" = --version ]; then echo "bazel {version}"; exit 0; fi\necho "fake {version}: $*"\n'
    )
    script.chmod(0o755)
    return script


def test_bazel_real_wins(tmp_path: Path) -> None:
    env = dict(os.environ, BAZEL_REAL=str(fake_bazel(tmp_path / "real", "8.4.2")))
    assert launcher(env, "build", "//x").stdout == "fake 8.4.2: build //x\n"


def test_bazel_on_path_is_used_when_recent_enough(tmp_path: Path) -> None:
    fake_bazel(tmp_path / "new", "7.4.1")
    env = dict(os.environ, PATH=f"{tmp_path / 'new'}:{os.environ['PATH']}")
    env.pop("BAZEL_REAL", None)
    assert launcher(env, "info").stdout == "fake 7.4.1: info\n"


def test_old_bazel_on_path_is_not_used(tmp_path: Path) -> None:
    fake_bazel(tmp_path / "old", "6.5.0")
    env = dict(os.environ, PATH=f"{tmp_path / 'old'}:{os.environ['PATH']}")
    env.pop("BAZEL_REAL", None)
    result = launcher(env, "version")
    assert "fake" not in result.stdout
    assert result.stdout.startswith("Build label: 7.7.1\n")


def test_version_and_overhead_of_a_provisioned_root() -> None:
    env = dict(os.environ)
    env.pop("BAZEL_REAL", None)
    launcher(env, "version")  # provisions on a fresh machine
    start = time.perf_counter()
    result = launcher(env, "version")
    assert result.stdout.startswith("Build label: 7.7.1\n")
    assert time.perf_counter() - start < 1.0


def test_damaged_root_is_detected_and_rebuilt(tmp_path: Path) -> None:
    """A root that lost files is thrown away and provisioned again (here against an unreachable mirror)."""
    cache = tmp_path / "cache"
    root = cache / "rules_venvstacks" / "bazel-7.7.1-root"
    (root / "usr/bin").mkdir(parents=True)
    real_root = Path(launcher(dict(os.environ), "--print-root").stdout.strip())
    (root / ".complete").write_text((real_root / ".complete").read_text())  # complete, except for its files
    env = dict(
        os.environ, XDG_CACHE_HOME=str(cache), VENVSTACKS_DEBIAN_MIRROR=UNREACHABLE_MIRROR, VENVSTACKS_BAZEL_OFFLINE="1"
    )
    result = launcher(env, "version", cwd=tmp_path)
    assert f"{root} is incomplete; rebuilding it" in result.stderr
    assert result.returncode != 0
    assert "tools/bazel: error: debootstrap failed; see" in result.stderr
    assert not root.exists()  # the damaged root is gone; the next call starts over


def test_not_root_says_what_to_do(tmp_path: Path) -> None:
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is not installed")
    home = Path(tempfile.mkdtemp(prefix="launcher-nobody-"))  # reachable for an unprivileged user
    home.chmod(0o777)
    env = dict(os.environ, XDG_CACHE_HOME=str(home / "cache"), VENVSTACKS_BAZEL_OFFLINE="1", HOME=str(home))
    result = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", str(BAZEL), "version"],
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        check=False,
    )
    wrote_cache = (home / "cache").exists()
    shutil.rmtree(home)
    assert result.returncode == 1
    assert "needs root" in result.stderr and "bazelisk" in result.stderr
    assert not wrote_cache  # nothing written before the check


@pytest.mark.heavy
def test_provision_from_nothing_and_repair(tmp_path: Path) -> None:
    """The whole recipe from nothing (about 2 minutes, downloads Debian packages), then a repair."""
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"), VENVSTACKS_BAZEL_OFFLINE="1")
    first = launcher(env, "version", cwd=tmp_path)
    assert first.stdout.startswith("Build label: 7.7.1\n"), first.stderr
    root = Path(launcher(env, "--print-root").stdout.strip())
    shutil.rmtree(root / "usr" / "share")  # half of the root is gone
    again = launcher(env, "version", cwd=tmp_path)
    assert "is incomplete; rebuilding it" in again.stderr
    assert again.stdout.startswith("Build label: 7.7.1\n")
