"""uv: unpack the runtime, then per app `uv venv` + `uv pip install --no-deps` of its locked wheels; what it ships is
each venv and the runtime once, as tar.zst at this project's level."""

from __future__ import annotations

import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

import zstandard
from common import UV, mb, remove, sh, starts, timed, tree_bytes
from peer_stacks import Shipment, StackRun, app_wheels

ZSTD_LEVEL = 3  # the level of this project's tar.zst archives


@dataclass(frozen=True)
class UvVenvs(Shipment):
    disk: int  # bytes on disk of the runtime and the venvs
    runtime_zst: int  # bytes of the runtime as tar.zst, shipped once next to uv venvs and pex files


def tar_zst(tree: Path, dest: Path) -> int:
    """Archives a directory as tar.zst at this project's level (symlinks kept as they are); returns its size."""
    with (
        dest.open("wb") as raw,
        zstandard.ZstdCompressor(level=ZSTD_LEVEL).stream_writer(raw) as stream,
        tarfile.open(fileobj=stream, mode="w|") as tar,
    ):
        tar.add(tree, arcname=tree.name)
    return dest.stat().st_size


def install(run: StackRun, root: Path, env: dict[str, str]) -> None:
    """The runtime unpacked into `root/python`, and one venv per app with its wheels, `root/app-<app>`."""
    python = root / "python" / "bin" / "python3"
    root.mkdir()
    sh(["tar", "-xzf", run.runtime_archive, "-C", root])
    for app in run.stack.apps:
        venv = root / f"app-{app}"
        sh([UV, "venv", "--quiet", "--python", python, venv], env=env)
        wheels = [run.wheels / w.filename for w in app_wheels(run.layers, app)]
        if wheels:
            install = [UV, "pip", "install", "--quiet", "--python", venv / "bin" / "python"]
            sh([*install, "--no-index", "--no-deps", "--offline", *wheels], env=env)


def pack(run: StackRun, root: Path, archives: Path) -> dict[str, int]:
    """The runtime and each venv as tar.zst in `archives`; returns their sizes, the runtime's as "python"."""
    sizes = {"python": tar_zst(root / "python", archives / "python.tar.zst")}
    for app in run.stack.apps:
        sizes[app] = tar_zst(root / f"app-{app}", archives / f"{app}.tar.zst")
    return sizes


def measure(run: StackRun, floor_seconds: float) -> UvVenvs:
    """Times `install` (cold uv cache) and `pack`; adds their rows vs the floor."""
    root = run.work / "uv"
    env = dict(os.environ, UV_CACHE_DIR=str(run.work / "uv-cache"), UV_PYTHON_DOWNLOADS="never", UV_NO_CONFIG="1")
    seconds = timed(lambda: install(run, root, env))
    scripts = run.stack.example / "stacks"
    check = starts({app: [root / f"app-{app}" / "bin" / "python", scripts / m] for app, m in run.stack.apps.items()})
    archives = run.work / "uv-archives"
    archives.mkdir()
    sizes: dict[str, int] = {}
    packing = timed(lambda: sizes.update(pack(run, root, archives)))
    shipped = sum(sizes.values())
    disk = tree_bytes(root)
    for path in (root, archives, run.work / "uv-cache"):
        remove(path)
    run.row(
        "uv: runtime + venv + pip install per app vs floor",
        seconds,
        seconds / floor_seconds,
        "",
        f"cold uv cache; ships {mb(shipped)} (venvs + runtime once, tar.zst {ZSTD_LEVEL}){check}",
    )
    run.row(
        "uv incl. tar.zst of what it ships vs floor",
        seconds + packing,
        (seconds + packing) / floor_seconds,
        "",
        "the floor and this project write archives too",
    )
    return UvVenvs(seconds, shipped, disk, sizes["python"])
