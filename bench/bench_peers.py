#!/usr/bin/env python3
"""This project side by side with the floor, uv, pex and venvstacks, on the same stacks, in one run (issue 5).

Stacks: examples/mlx (one app) and examples/sklearn (two apps sharing a SciPy/scikit-learn framework layer). For each
stack, every way starts from exactly the same wheel files (the lock's, from Bazel's repository cache) and the same
local python-build-standalone-layout runtime:

- floor: `tar` of the runtime + `unzip` of the wheels into empty directories + the same tar.zst compression;
- Bazel alone: the cold builds of one genrule, and of one rule that resolves a toolchain, in a workspace of their
  own (bench/workspaces/bazel_alone: what any Bazel build, and any rule set with toolchains, pays here first);
- this project: cold build (empty output base, warm repository cache, profiled), no-op rebuild, rebuilds after an
  app-only code change and an app-only requirement change (actions executed, from Bazel's trace profile), and for
  the MLX stack the 3-platform `//stacks:all_platforms` build (macOS/Windows runtimes are layout fixtures);
- uv: unpack the runtime, then `uv venv` + `uv pip install --no-deps` of the app's locked wheels, per app;
- pex: one `.pex` per app from the same wheels (`--intransitive`, no index);
- venvstacks (PyPI) on the equivalent venvstacks.toml, with its runtime directory pre-populated from the local runtime;
- deploy: unpack + postinstall of the published archives (the deploy verb) into a new directory.

Bytes shipped: this project's archives; uv's venvs and the runtime, each as tar.zst at the same level; pex files plus
the runtime; venvstacks' own archives (tar.xz, its only format on Linux). Writes bench/out/peers.json.

One module a way (peer_bazel, peer_deploy, peer_uv, peer_pex, peer_venvstacks), sharing peer_stacks and common; this
one runs them in order on each stack and compares them.
"""

from __future__ import annotations

import os
import sys

import peer_bazel
import peer_pex
import peer_uv
import peer_venvstacks
from common import ROOT, UV, Report, cached_file, floor, local_runtime_archive, machine_facts, mb, remove, scratch, sh
from peer_deploy import Deployment, deploy
from peer_stacks import STACKS, Shipment, StackRun, link_wheels


def measure_floor(run: StackRun) -> float:
    """The floor: tar + unzip of the same runtime and wheels, and the same tar.zst compression."""
    layers = {
        layer.env_name: (
            run.runtime_archive if layer.kind == "runtime" else None,
            [cached_file(w.sha256) for w in layer.wheels],
        )
        for layer in run.layers
    }
    seconds = floor(layers, run.work / "floor")
    remove(run.work / "floor")
    run.row("floor: tar + unzip + tar.zst of the same files", seconds)
    return seconds


def compare(run: StackRun, deployed: Deployment, uv: peer_uv.UvVenvs, pex: Shipment, venvstacks: Shipment) -> None:
    """The rows of deploying and of bytes shipped and on disk, this project vs the peers."""
    shipped = deployed.shipped
    run.raw["bytes shipped"] = {
        "this project": shipped,
        "uv": uv.shipped,
        "pex": pex.shipped,
        "venvstacks": venvstacks.shipped,
    }
    run.row(
        "deploy (unpack + postinstall) vs uv install",
        deployed.seconds,
        deployed.seconds / uv.seconds,
        "",
        f"uv: {uv.seconds:.2f}s{deployed.check}",
    )
    target = run.stack.ship_target
    run.row(
        "bytes shipped vs uv per-app venvs", None, shipped / uv.shipped, target, f"{mb(shipped)} vs {mb(uv.shipped)}"
    )
    run.row("bytes shipped vs pex per app", None, shipped / pex.shipped, target, f"{mb(shipped)} vs {mb(pex.shipped)}")
    if venvstacks.shipped:
        run.row(
            "bytes shipped vs venvstacks (tar.xz)",
            None,
            shipped / venvstacks.shipped,
            "",
            f"{mb(shipped)} vs {mb(venvstacks.shipped)}",
        )
    on_disk = f"{mb(deployed.deployed)} vs {mb(uv.disk)}"
    run.row("bytes on disk, deployed vs uv venvs", None, deployed.deployed / uv.disk, "", on_disk)


def measure_stack(run: StackRun) -> None:
    """Every way on one stack, in this order: this project (the floor once its downloads are cached), uv, pex,
    venvstacks; then the comparisons."""
    ws, server = peer_bazel.started_workspace(run)
    link_wheels(run.layers, run.wheels)
    floor_seconds = measure_floor(run)
    peer_bazel.bazel_alone(run, floor_seconds)
    cold = peer_bazel.cold_and_noop(run, ws, server, floor_seconds)
    deployed = deploy(run, ws)
    peer_bazel.app_changes(run, ws, cold)
    ws.shutdown()
    remove(ws.output_base)
    if run.stack.bundle:
        peer_bazel.three_platforms(run, cold)
    uv = peer_uv.measure(run, floor_seconds)
    pex = peer_pex.measure(run, floor_seconds, uv.runtime_zst)
    venvstacks = peer_venvstacks.measure(run, floor_seconds)
    compare(run, deployed, uv, pex, venvstacks)


def versions() -> dict[str, str]:
    found = {"uv": sh([UV, "--version"]).strip()}
    for requirement in (peer_pex.PEX_REQUIREMENT, peer_venvstacks.VENVSTACKS_REQUIREMENT):
        name, _, version = requirement.partition("==")
        found[name] = version
    return found


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    report = Report("Peers: the floor, this project, uv, pex and venvstacks on the same stacks", facts=machine_facts())
    report.facts.update(versions())
    report.facts["load average at start"] = load_average()
    with scratch("bench-peers-") as work:
        runtime_archive = local_runtime_archive("3.11")
        runtimes = peer_bazel.fixture_runtimes(work / "runtimes", runtime_archive)
        report.facts["runtime"] = runtime_archive.name
        for stack in STACKS:
            print(f"\n{stack.name}: {stack.example.relative_to(ROOT)}", flush=True)
            run = StackRun(stack, report, work / stack.name, runtime_archive, runtimes)
            measure_stack(run)
            report.facts[f"{stack.name}: raw"] = run.raw
            remove(work / stack.name)
    report.facts["load average at end"] = load_average()
    report.save("peers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
