"""The deploy verb on this project's published archives: unpack + postinstall into a new directory."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass

from common import ROOT, Workspace, remove, sh, starts, timed, tree_bytes
from peer_stacks import PLATFORM, StackRun

DEPLOY = "import sys; from stacktool.cli import main; sys.exit(main(sys.argv[1:]))"


@dataclass(frozen=True)
class Deployment:
    seconds: float
    shipped: int  # bytes of the published archives
    deployed: int  # bytes on disk once deployed
    check: str  # "" when every app started, else why not (see common.starts)


def deploy(run: StackRun, ws: Workspace) -> Deployment:
    """Deploys the archives `ws` published into a new directory, timed; starts each app there (untimed)."""
    stacks = ws.path / "bazel-bin" / "stacks"
    metadata = [stacks / f"{layer.name}.layer" / f"{layer.env_name}-{PLATFORM}.json" for layer in run.layers]
    shipped = sum(json.loads(m.read_text())["archive_size"] for m in metadata)
    dest = run.work / "deployed"
    env = dict(os.environ, PYTHONPATH=str(ROOT / "python"))
    command = [sys.executable, "-c", DEPLOY, "deploy", "--to", dest, *metadata]
    seconds = timed(lambda: sh(command, env=env))
    check = starts(run.module_launches(dest))
    deployed = tree_bytes(dest)
    remove(dest)
    return Deployment(seconds, shipped, deployed, check)
