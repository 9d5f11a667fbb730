"""venvstacks (from PyPI) on the venvstacks.toml equivalent to a stack, with its runtime directory pre-populated from
the local runtime; what it ships: its own archives (tar.xz, its only format on Linux)."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from common import mb, remove, sh, starts, timed, tool
from peer_stacks import Shipment, StackRun

VENVSTACKS_REQUIREMENT = "venvstacks==0.7.0"
SECTIONS = {"runtime": "runtimes", "framework": "frameworks", "application": "applications"}


@dataclass(frozen=True)
class Published:
    seconds: float  # the build, runtime unpack included
    publish: float
    check: str  # "" when every app started, else why not (see common.starts)
    out: Path  # the published archives


def reachable(host: str) -> str:
    try:
        socket.create_connection((host, 443), timeout=10).close()
        return "reachable"
    except OSError as error:
        return f"unreachable ({error})"


def runtime_version(archive: Path) -> str:
    match = re.match(r"cpython-(\d+\.\d+\.\d+)", archive.name)
    if match is None:
        raise SystemExit(f"cannot read the Python version from {archive.name}")
    return match.group(1)


def write_spec(run: StackRun, where: Path, version: str) -> Path:
    """The venvstacks.toml equivalent to the stack's BUILD file, with its launch modules."""
    where.mkdir(parents=True)
    lines = []
    for layer in run.layers:
        lines += [f"[[{SECTIONS[layer.kind]}]]", f"name = {json.dumps(layer.name)}"]
        if layer.kind == "runtime":
            lines.append(f'python_implementation = "cpython@{version}"')
        else:
            frameworks = [n for n in layer.lower if any(x.name == n and x.kind == "framework" for x in run.layers)]
            lines.append(f"frameworks = {json.dumps(frameworks)}" if frameworks else f'runtime = "{layer.lower[0]}"')
        if layer.kind == "application":
            module = run.stack.apps[layer.name]
            shutil.copy(run.stack.example / "stacks" / module, where)
            lines.append(f"launch_module = {json.dumps(module)}")
        lines += [f"requirements = {json.dumps(list(layer.requirements))}", ""]
    spec = where / "venvstacks.toml"
    spec.write_text("\n".join(lines))
    return spec


def record_own_runtime_download(run: StackRun, venvstacks: Path, env: dict[str, str], version: str) -> Path:
    """Without a runtime of its own, venvstacks downloads one (pdm + pbs-installer, from GitHub): records in the
    report's facts whether locking that way works here, and why not; returns the spec it tried."""
    native = write_spec(run, run.work / "venvstacks-native", version)
    fact = f"{run.stack.name}: venvstacks with its own runtime download"
    try:
        sh([venvstacks, "lock", native, "--no-index", "--local-wheels", run.wheels], env=env, timeout=600)
        run.report.facts[fact] = "works"
    except (RuntimeError, subprocess.TimeoutExpired) as error:
        why = [line.strip(" │╭╮╰╯─") for line in str(error).splitlines()]
        reason = next((line for line in reversed(why) if line), str(error))
        run.report.facts[fact] = (
            f"fails: {reason}; github.com (where pbs-installer downloads from) is {reachable('github.com')}; "
            f"measured instead with <build dir>/cpython@{version} pre-populated from the local runtime, "
            "which venvstacks uses instead of downloading"
        )
    return native


def build_and_publish(run: StackRun, venvstacks: Path, spec: Path, env: dict[str, str], version: str) -> Published:
    """Locks (untimed), then builds with a cold uv cache and publishes, both timed; the local runtime goes where
    venvstacks looks first, <build dir>/cpython@X.Y.Z. Raises RuntimeError when a step fails."""
    build_dir = spec.parent / "_build"
    wheels = ["--no-index", "--local-wheels", run.wheels]

    def populate() -> None:
        runtime = build_dir / f"cpython@{version}"
        runtime.mkdir(parents=True, exist_ok=True)
        sh(["tar", "-xzf", run.runtime_archive, "-C", runtime, "--strip-components=1"])

    populate()
    sh([venvstacks, "lock", spec, *wheels], env=env)
    remove(run.work / "vs-uv-cache")
    seconds = timed(lambda: (populate(), sh([venvstacks, "build", spec, "--clean", *wheels], env=env)))
    check = starts(run.module_launches(build_dir))
    out = run.work / "venvstacks-out"
    publish = timed(lambda: sh([venvstacks, "publish", spec, "--output-dir", out], env=env))
    return Published(seconds, publish, check, out)


def measure(run: StackRun, floor_seconds: float) -> Shipment:
    """venvstacks' build (vs the floor) and publish of the stack; (0, 0) with a row saying why when it cannot be."""
    version = runtime_version(run.runtime_archive)
    try:
        venvstacks = tool(VENVSTACKS_REQUIREMENT) / "bin" / "venvstacks"
    except RuntimeError as error:
        run.row("venvstacks build", None, None, "", f"not measured: installing it from PyPI failed: {error}")
        return Shipment(0.0, 0)
    env = dict(os.environ, UV_CACHE_DIR=str(run.work / "vs-uv-cache"))
    native = record_own_runtime_download(run, venvstacks, env, version)
    spec = write_spec(run, run.work / "venvstacks", version)
    try:
        published = build_and_publish(run, venvstacks, spec, env, version)
    except RuntimeError as error:
        run.row("venvstacks build", None, None, "", f"failed: {error}")
        return Shipment(0.0, 0)
    shipped = sum(p.stat().st_size for p in published.out.glob("*.tar.xz"))
    run.row(
        "venvstacks build vs floor",
        published.seconds,
        published.seconds / floor_seconds,
        "",
        f"venvstacks {VENVSTACKS_REQUIREMENT.partition('==')[2]}, cold uv cache, runtime unpack included"
        + published.check,
    )
    run.row("venvstacks publish (tar.xz)", published.publish, None, "", f"{mb(shipped)} of archives")
    for path in (spec.parent, native.parent, published.out, run.work / "vs-uv-cache"):
        remove(path)
    return Shipment(published.seconds, shipped)
