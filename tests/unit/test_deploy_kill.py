"""SIGKILL at every step of install, update, rollback and gc of a deploy target (python/stacktool/deploy_target.py):
the previously active version stays runnable and running the command again succeeds.

Real processes, real archives: the tool runs as `stacktool deploy ...` in a child process that SIGKILLs itself at
the Nth step changing the target (VENVSTACKS_DEPLOY_KILL_AT=N, for N = 1, 2, ... until a run has no Nth step), and,
for points inside extraction, the test SIGKILLs it after a delay. Each point starts from the same target state: a
copy of it made of hard links at the same path (the tool never writes into a file of a complete layer).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from itertools import count
from pathlib import Path

import pytest
from stacktool.deploy_target import KILL_AT, LAYERS, Target
from test_deploy_target import app_v2_stack, publish_stack, run_app

ROOT = Path(__file__).resolve().parents[2]
CLI = "import sys; from stacktool.cli import main; sys.exit(main(sys.argv[1:]))"
# What the app prints (in part) in each stack version.
V1, V2, V3 = "six 1.16.0", "hello, version 2", "six 1.17.0"


@pytest.fixture(scope="module")
def v3(kit, published_runtime, published_stack, wheels, posix_trees, tmp_path_factory) -> Path:
    """The stack with a new framework (six 1.17.0): new framework and app slots, the runtime's reused."""
    _, runtime = published_runtime
    work = tmp_path_factory.mktemp("v3")
    six = kit.wheel(wheels["six-1.17.0"], posix_trees["six-1.17.0"])
    framework = kit.compose_config("framework-sci", "framework", runtime=runtime, wheels=[six])
    (work / "out").mkdir()
    framework_metadata, _ = kit.build_and_pack(framework, work / "fw", work / "out")
    app_archive = published_stack[2]  # same app bytes, over a new framework
    app_copy = work / "out" / app_archive.name
    shutil.copy(app_archive, app_copy)
    shutil.copy(app_archive.with_suffix(".tar.zst"), work / "out" / app_archive.with_suffix(".tar.zst").name)
    shutil.copy(app_archive.with_suffix(".cdx.json"), work / "out" / app_archive.with_suffix(".cdx.json").name)
    return publish_stack([published_stack[0], framework_metadata, app_copy], work)


def deploy(*args: str, kill_at: int = 0) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "python"), **({KILL_AT: str(kill_at)} if kill_at else {}))
    command = [sys.executable, "-c", CLI, "deploy", *args]
    return subprocess.Popen(command, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finished(process: subprocess.Popen[str]) -> int:
    _, stderr = process.communicate()  # the exit status: 0, or killed
    assert process.returncode in (0, -signal.SIGKILL), stderr
    return process.returncode


class Scenario:
    """A target state saved once (`save`), restored at the same path before each kill point."""

    def __init__(self, target: Path, saved: Path) -> None:
        self.target, self.saved = target, saved

    def save(self) -> None:
        shutil.rmtree(self.saved, ignore_errors=True)
        if self.target.exists():
            shutil.copytree(self.target, self.saved, symlinks=True, copy_function=os.link)

    def restore(self) -> None:
        shutil.rmtree(self.target, ignore_errors=True)
        if self.saved.exists():
            shutil.copytree(self.saved, self.target, symlinks=True, copy_function=os.link)

    def current_output(self) -> str | None:
        return run_app(self.target) if (self.target / "current").is_symlink() else None

    def kill_at_every_step(self, args: list[str], before: str | None, after: str, check: Callable[[], None]) -> int:
        """Runs `args` killed at step 1, 2, ... until a run completes; after each kill the app prints `before` or
        `after` (or there is no version yet, when `before` is None), and a second run succeeds. Returns the points."""
        for step in count(1):
            self.restore()
            if finished(deploy(*args, kill_at=step)) == 0:
                check()
                return step - 1
            output = self.current_output()
            if output is None:
                assert before is None, f"killed at step {step}: no active version"
            else:
                assert after in output or (before is not None and before in output), (step, output)
            assert finished(deploy(*args)) == 0, step
            assert after in (self.current_output() or ""), step
            check()
        raise AssertionError("unreachable")


def test_sigkill_at_every_point_leaves_a_runnable_version_and_a_retry_succeeds(
    published_stack, kit, published_runtime, v3, tmp_path, capsys
):
    v1, v2 = (
        publish_stack(published_stack, tmp_path / "v1"),
        publish_stack(app_v2_stack(kit, published_runtime, published_stack, tmp_path / "app"), tmp_path / "v2"),
    )
    target = tmp_path / "target"
    scenario = Scenario(target, tmp_path / "saved")
    points: dict[str, int] = {}
    started = time.perf_counter()

    def only(*versions: int) -> Callable[[], None]:
        def check() -> None:
            kept = sorted(int(p.name) for p in (target / "versions").glob("[0-9]*"))
            assert kept == list(versions)
            used = {s for v in Target(target).versions().values() for s in v.slots}
            assert {p.name for p in (target / LAYERS).iterdir()} == used  # no leftover, nothing missing

        return check

    scenario.save()  # an empty target
    points["install"] = scenario.kill_at_every_step(["install", str(v1), "--target", str(target)], None, V1, only(1))
    assert finished(deploy("install", str(v1), "--target", str(target))) == 0
    scenario.save()  # version 1 active
    update = ["update", str(v2), "--target", str(target)]
    points["update (app)"] = scenario.kill_at_every_step(update, V1, V2, only(1, 2))
    update3 = ["update", str(v3), "--target", str(target)]
    points["update (framework)"] = scenario.kill_at_every_step(update3, V1, V3, only(1, 2))
    scenario.restore()
    assert finished(deploy(*update)) == 0
    scenario.save()  # versions 1 and 2, 2 active
    rollback = ["rollback", "--to", "1", "--target", str(target)]  # a retry of `rollback` alone would go further back
    points["rollback"] = scenario.kill_at_every_step(rollback, V2, V1, only(1, 2))
    scenario.save()  # versions 1 and 2, 1 active (rolled back): gc keeps 1 alone, removes 2 and its app's layer
    points["gc"] = scenario.kill_at_every_step(["gc", "--keep", "1", "--target", str(target)], V1, V1, only(1))

    # inside extraction and hashing: kills at times spread over a first install, which unpacks the runtime
    scenario.saved = tmp_path / "empty"
    scenario.restore()
    started_install = time.perf_counter()
    assert finished(deploy("install", str(v1), "--target", str(target))) == 0
    duration = time.perf_counter() - started_install
    delays = [duration * i / 12 for i in range(1, 12)]
    for delay in delays:
        scenario.restore()
        process = deploy("install", str(v1), "--target", str(target))
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        finished(process)
        assert finished(deploy("install", str(v1), "--target", str(target))) == 0
        assert V1 in run_app(target)
        only(1)()
    points["timed kills (install)"] = len(delays)
    with capsys.disabled():
        listing = ", ".join(f"{name} {n}" for name, n in points.items())
        print(f"\nkill points tried: {sum(points.values())} ({listing}) in {time.perf_counter() - started:.0f} s")
    assert min(points.values()) >= 2
