#!/usr/bin/env python3
"""A PyTorch-size stack (issue 11, the size issue 15 measures against): bench/workspaces/pytorch_size, torch CPU
over numpy/SciPy/scikit-learn as two stacked frameworks under two apps (about 250 MB of wheels, 1 GB installed).

Measured in one run, each against the floor measured just before it (the floor varies between runs here):
- cold build from a fresh output base with a warm repository cache (what a new CI machine with a cache does);
- actions only: rebuilt after `bazel clean` (repositories already fetched and extracted);
- deploy (unpack + postinstall) and bytes shipped against per-app uv venvs of the same wheels.

torch comes from the `pytorch-cpu` index; without network the index is mirrored from a directory holding the CPU
wheel (VENVSTACKS_TORCH_WHEELS, default /opt/wheels), as the heavy tests do.

    $(python3 tools/devenv.py) bench/bench_pytorch.py      # writes bench/out/pytorch.json
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import peer_bazel
import peer_uv
from bench_peers import measure_floor
from common import ROOT, Report, local_runtime_archive, machine_facts, mb, scratch
from peer_deploy import deploy
from peer_stacks import Stack, StackRun, link_wheels

TORCH_WHEEL = "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"
STACK = Stack(
    "pytorch-size",
    ROOT / "bench" / "workspaces" / "pytorch_size",
    {"train": "train.py", "predict": "predict.py"},
    "predict.py",
    ('requirements = ["torch"],', 'requirements = ["torch", "six==1.16.0"],'),
    ship_target="<= 0.6x",
)


def mirror_torch() -> str:
    """Points the pytorch-cpu index at a local directory holding the CPU wheel; returns "" or why it cannot."""
    dirs = [Path(p) for p in os.environ.get("VENVSTACKS_TORCH_WHEELS", "/opt/wheels").split(":")]
    found = next((d for d in dirs if (d / TORCH_WHEEL).is_file()), None)
    if found is None:
        return f"no {TORCH_WHEEL} in {', '.join(map(str, dirs))} (set VENVSTACKS_TORCH_WHEELS)"
    os.environ["VENVSTACKS_INDEX_MIRRORS"] = f"pytorch-cpu={found}"
    os.environ["VENVSTACKS_BAZEL_BINDS"] = str(found)
    return ""


def main() -> int:
    missing = mirror_torch()
    if missing:
        print(f"bench_pytorch: not run: {missing}")
        return 1
    report = Report("PyTorch-size stack: torch CPU over numpy/SciPy/scikit-learn, two apps", facts=machine_facts())
    with scratch("bench-pytorch-") as work:
        run = StackRun(STACK, report, work, local_runtime_archive("3.11"), work / "runtimes")
        report.facts["wheels"] = f"{sum(len(layer.wheels) for layer in run.layers)} wheels"
        ws, server = peer_bazel.started_workspace(run)
        link_wheels(run.layers, run.wheels)
        report.facts["wheel bytes"] = mb(sum(p.resolve().stat().st_size for p in run.wheels.iterdir()))
        try:
            floor = measure_floor(run)
            cold = peer_bazel.build(ws, run.targets, "cold")
            run.raw["cold build profile"] = cold.profile
            run.raw["cold build action seconds (summed per mnemonic)"] = cold.action_seconds()
            run.row(
                "cold build, fresh output base, warm repository cache, vs floor",
                cold.seconds, cold.seconds / floor, "<= 1.3x",
                f"{cold.summary()}; {cold.where_the_time_goes()}; server start {server:.2f}s",
            )  # fmt: skip
            ws.bazel("clean")
            floor = measure_floor(run)
            actions = peer_bazel.build(ws, run.targets, "actions")
            run.raw["actions-only profile"] = actions.profile
            run.row("actions only (after bazel clean) vs floor", actions.seconds, actions.seconds / floor, "<= 1.1x")
            deployed = deploy(run, ws)
        finally:
            ws.shutdown()
        uv = peer_uv.measure(run, floor)
        run.row("deploy (unpack + postinstall) vs uv install", deployed.seconds, deployed.seconds / uv.seconds, "",
                f"uv: {uv.seconds:.2f}s{deployed.check}")  # fmt: skip
        run.row(
            "bytes shipped vs uv per-app venvs", None, deployed.shipped / uv.shipped, STACK.ship_target,
            f"{mb(deployed.shipped)} vs {mb(uv.shipped)}",
        )  # fmt: skip
        report.facts["raw"] = run.raw
    report.save("pytorch")
    return 0


if __name__ == "__main__":
    sys.exit(main())
