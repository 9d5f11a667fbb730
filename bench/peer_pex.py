"""pex: one `.pex` file per app from the same wheels (`--intransitive`, no index), run with the unpacked runtime."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from common import mb, remove, sh, starts, timed, tool
from peer_stacks import Shipment, StackRun, app_wheels

PEX_REQUIREMENT = "pex==2.105.2"
# One pex per app, from the local wheels only. `--venv --venv-site-packages-copies`: at first run the pex installs its
# wheels into one virtual environment by copies. pex's default (one directory per wheel on sys.path) and --venv's
# symlinks cannot load MLX: its native libraries find each other across its two wheels (mlx, mlx-cpu) through
# $ORIGIN-relative paths, which only resolve when both wheels' files really share one site-packages.
PEX_OPTIONS = ["--venv", "--venv-site-packages-copies", "--no-pypi", "--intransitive", "--no-build"]


def prepare(run: StackRun, root: Path) -> Path:
    """The runtime unpacked into `root/runtime` and each app's launch module in `root/src/<app>`; returns the
    runtime's python."""
    runtime = root / "runtime"
    runtime.mkdir(parents=True)
    sh(["tar", "-xzf", run.runtime_archive, "-C", runtime])
    for app, module in run.stack.apps.items():
        (root / "src" / app).mkdir(parents=True)
        shutil.copy(run.stack.example / "stacks" / module, root / "src" / app)
    return runtime / "python" / "bin" / "python3"


def build_pexes(run: StackRun, pex: Path, python: Path, root: Path, env: dict[str, str]) -> None:
    """`root/<app>.pex` for each app, pinned to its locked wheels."""
    for app, module in run.stack.apps.items():
        pins = [f"{w.name}=={w.version}" for w in app_wheels(run.layers, app)]
        options = [*PEX_OPTIONS, "--python", python, "--find-links", run.wheels]
        where = ["-D", root / "src" / app, "-m", Path(module).stem, "-o", root / f"{app}.pex"]
        sh([pex, *options, *pins, *where], env=env)


def measure(run: StackRun, floor_seconds: float, runtime_zst: int) -> Shipment:
    """Times `build_pexes` (cold PEX_ROOT); what it ships: the pex files plus the runtime once (`runtime_zst` bytes,
    as uv's)."""
    pex = tool(PEX_REQUIREMENT) / "bin" / "pex"
    root = run.work / "pex"
    env = dict(os.environ, PEX_ROOT=str(run.work / "pex-root"))
    python = prepare(run, root)
    seconds = timed(lambda: build_pexes(run, pex, python, root, env))
    check = starts({app: [python, root / f"{app}.pex"] for app in run.stack.apps}, env=env)
    files = sum((root / f"{app}.pex").stat().st_size for app in run.stack.apps)
    remove(root)
    remove(run.work / "pex-root")
    shipped = files + runtime_zst
    run.row(
        "pex: one file per app vs floor",
        seconds,
        seconds / floor_seconds,
        "",
        f"cold PEX_ROOT; ships {mb(shipped)} ({mb(files)} of .pex + the runtime){check}",
    )
    return Shipment(seconds, shipped)
