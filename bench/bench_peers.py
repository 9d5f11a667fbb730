#!/usr/bin/env python3
"""This project side by side with the floor, uv, pex and venvstacks, on the same stacks, in one run (issue 5).

Stacks: examples/mlx (one app) and examples/sklearn (two apps sharing a SciPy/scikit-learn framework layer). For each
stack, every way starts from exactly the same wheel files (the lock's, from Bazel's repository cache) and the same
local python-build-standalone-layout runtime:

- floor: `tar` of the runtime + `unzip` of the wheels into empty directories + the same tar.zst compression;
- this project: cold build (empty output base, warm repository cache, profiled), no-op rebuild, rebuilds after an
  app-only code change and an app-only requirement change (actions executed, from Bazel's execution log), and for
  the MLX stack the 3-platform `//stacks:all_platforms` build (macOS/Windows runtimes are layout fixtures);
- uv: unpack the runtime, then `uv venv` + `uv pip install --no-deps` of the app's locked wheels, per app;
- pex: one `.pex` per app from the same wheels (`--intransitive`, no index);
- venvstacks (PyPI) on the equivalent venvstacks.toml, with its runtime directory pre-populated from the local runtime;
- deploy: unpack + postinstall of the published archives (the deploy verb) into a new directory.

Bytes shipped: this project's archives; uv's venvs and the runtime, each as tar.zst at the same level; pex files plus
the runtime; venvstacks' own archives (tar.xz, its only format on Linux). Writes bench/out/peers.json.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zstandard
from common import (
    CACHE,
    ROOT,
    Report,
    Row,
    cached_file,
    floor,
    fresh_workspace,
    local_runtime_archive,
    machine_facts,
    read_json_stream,
    remove,
    tempdir,
    timed,
)
from harness import Workspace
from runtime_fixtures import make_fixture_runtime

PLATFORM = "linux_x86_64"
PEX_REQUIREMENT = "pex==2.105.2"
VENVSTACKS_REQUIREMENT = "venvstacks==0.7.0"
TOOLS = CACHE / "bench-tools"
UV = Path(sys.executable).parent / "uv"
ZSTD_LEVEL = 3  # the level of this project's tar.zst archives
MB = 1e6
# One pex per app, from the local wheels only. `--venv --venv-site-packages-copies`: at first run the pex installs its
# wheels into one virtual environment by copies. pex's default (one directory per wheel on sys.path) and --venv's
# symlinks cannot load MLX: its native libraries find each other across its two wheels (mlx, mlx-cpu) through
# $ORIGIN-relative paths, which only resolve when both wheels' files really share one site-packages.
PEX_OPTIONS = ["--venv", "--venv-site-packages-copies", "--no-pypi", "--intransitive", "--no-build"]
DEPLOY = "import sys; from stacktool.cli import main; sys.exit(main(sys.argv[1:]))"


@dataclass(frozen=True)
class Stack:
    name: str
    example: Path
    apps: dict[str, str]  # application layer -> its launch module file in stacks/
    code_change: str  # the launch module edited for the app-only code change
    requirement_change: tuple[str, str]  # the BUILD.bazel edit adding a requirement to one app only
    bundle: str = ""  # the all-platforms target, if the stack has one
    ship_target: str = ""  # the target for bytes shipped vs the per-app peers


STACKS = (
    Stack(
        "mlx",
        ROOT / "examples" / "mlx",
        {"mlx_app": "report_mlx_version.py"},
        "report_mlx_version.py",
        ('requirements = ["mlx"],', 'requirements = ["mlx", "six==1.16.0"],'),
        bundle="//stacks:all_platforms",
    ),
    Stack(
        "sklearn",
        ROOT / "examples" / "sklearn",
        {"classify": "classify_iris.py", "cluster": "cluster_blobs.py"},
        "cluster_blobs.py",
        ('requirements = ["scikit-learn"],', 'requirements = ["scikit-learn", "six==1.16.0"],'),
        ship_target="<= 0.6x",
    ),
)


@dataclass(frozen=True)
class Wheel:
    filename: str
    name: str
    version: str
    sha256: str


@dataclass(frozen=True)
class Layer:
    name: str  # the target's name
    env_name: str
    kind: str
    lower: tuple[str, ...]  # target names, nearest first
    requirements: tuple[str, ...]
    wheels: tuple[Wheel, ...]


def read_layers(index_path: Path) -> list[Layer]:
    """The layers of a lock index, lowest first."""
    layers = []
    for key, entry in json.loads(index_path.read_text())["layers"].items():
        inputs = entry["inputs"]
        wheels = tuple(
            Wheel(w["filename"], w["name"], w["version"], w["sha256"]) for w in entry["wheels"].get(PLATFORM, [])
        )
        lower = tuple(k.rpartition(":")[2] for k in inputs["lower"])
        layers.append(
            Layer(
                key.rpartition(":")[2], inputs["env_name"], inputs["kind"], lower, tuple(inputs["requirements"]), wheels
            )
        )
    return sorted(layers, key=lambda layer: (len(layer.lower), layer.name))


def app_wheels(layers: list[Layer], app: str) -> list[Wheel]:
    """What an app needs without layering: its own wheels and those of every layer below it."""
    by_name = {layer.name: layer for layer in layers}
    return [w for name in (app, *by_name[app].lower) for w in by_name[name].wheels]


@dataclass
class Build:
    seconds: float
    ran: list[dict[str, Any]]  # spawns that executed (cache hits excluded)
    profile: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        counts = Counter(e["mnemonic"] for e in self.ran)
        return f"{len(self.ran)} actions: {', '.join(f'{m} {n}' for m, n in sorted(counts.items()))}".rstrip(": ")

    def action_seconds(self) -> dict[str, float]:
        """Wall time of the executed actions, summed per mnemonic (they run in parallel: more than the build)."""
        total: dict[str, float] = defaultdict(float)
        for e in self.ran:
            total[e["mnemonic"]] += float(e.get("metrics", {}).get("totalTime", "0s").rstrip("s") or 0)
        return {m: round(s, 2) for m, s in sorted(total.items(), key=lambda item: -item[1])}


def build(ws: Workspace, targets: list[str], tag: str, profile: bool = True) -> Build:
    log = ws.output_base.parent / f"{tag}.exec.json"
    trace = ws.output_base.parent / f"{tag}.profile.gz"
    flags = [f"--execution_log_json_file={log}", *([f"--profile={trace}"] if profile else [])]
    seconds = timed(lambda: ws.bazel("build", *flags, *targets))
    ran = [e for e in read_json_stream(log) if not e.get("cacheHit")]
    return Build(seconds, ran, profile_summary(trace) if profile else {})


def profile_summary(trace: Path) -> dict[str, Any]:
    """Where a build's time goes, from Bazel's JSON trace profile (what `bazel analyze-profile` reads)."""
    with gzip.open(trace, "rt") as f:
        data = json.load(f)
    events = [e for e in (data["traceEvents"] if isinstance(data, dict) else data) if e.get("ph") == "X"]

    def secs(e: dict[str, Any]) -> float:
        return round(e.get("dur", 0) / 1e6, 2)

    fetches = sorted((e for e in events if e.get("cat") == "Fetching repository"), key=lambda e: -e.get("dur", 0))
    critical = [e for e in events if e.get("cat") == "critical path component"]
    phases = {e["name"]: secs(e) for e in events if e.get("name") in ("buildTargets", "runAnalysisAndExecutionPhase")}
    return {
        "critical path (s)": round(sum(secs(e) for e in critical), 2),
        "critical path": [f"{secs(e)}s {e['name']}" for e in critical if secs(e) >= 0.1],
        "repository fetches (s, summed)": round(sum(secs(e) for e in fetches), 2),
        "slowest repository fetches": [f"{secs(e)}s {e['name']}" for e in fetches[:3]],
        "sandbox setup (s, summed)": round(
            sum(secs(e) for e in events if e.get("name") in ("sandbox.createFileSystem", "sandbox.delete")), 2
        ),
        "phases (s)": phases,
    }


def sh(cmd: list[str | Path], env: dict[str, str] | None = None, cwd: Path | None = None, timeout: int = 1800) -> str:
    """Runs a command; returns its output, or raises with the command and the tail of its output."""
    result = subprocess.run(
        [str(c) for c in cmd], env=env, cwd=cwd, capture_output=True, text=True, check=False, timeout=timeout
    )
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise RuntimeError(f"{' '.join(str(c) for c in cmd[:3])} ... exited with {result.returncode}:\n{tail}")
    return result.stdout


def starts(apps: dict[str, list[str | Path]], env: dict[str, str] | None = None) -> str:
    """Starts each app (untimed); returns "" when all ran, else which did not and the last line of their error."""
    failed = []
    for app, command in apps.items():
        try:
            sh(command, env=env, timeout=300)
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            failed.append(f"{app} does not start ({str(error).strip().splitlines()[-1]})")
    return "; " + "; ".join(failed) if failed else ""


def reachable(host: str) -> str:
    try:
        socket.create_connection((host, 443), timeout=10).close()
        return "reachable"
    except OSError as error:
        return f"unreachable ({error})"


def tool(requirement: str) -> Path:
    """A private virtual environment with one tool from PyPI (made once, kept in the cache)."""
    venv = TOOLS / requirement.replace("==", "-")
    if not (venv / ".complete").exists():
        remove(venv)
        sh([UV, "venv", "--quiet", "--python", sys.executable, venv])
        sh([UV, "pip", "install", "--quiet", "--python", venv / "bin" / "python", requirement])
        (venv / ".complete").write_text(requirement)
    return venv


def tree_bytes(path: Path) -> int:
    """Apparent size of the regular files below `path` (symlinks not followed)."""
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def tar_zst(tree: Path, dest: Path) -> int:
    """Archives a directory as tar.zst at this project's level (symlinks kept as they are); returns its size."""
    with (
        dest.open("wb") as raw,
        zstandard.ZstdCompressor(level=ZSTD_LEVEL).stream_writer(raw) as stream,
        tarfile.open(fileobj=stream, mode="w|") as tar,
    ):
        tar.add(tree, arcname=tree.name)
    return dest.stat().st_size


def link_wheels(layers: list[Layer], dest: Path) -> Path:
    """A directory of the stack's wheels under their own file names (links into the repository cache)."""
    dest.mkdir(parents=True, exist_ok=True)
    for wheel in (w for layer in layers for w in layer.wheels):
        link = dest / wheel.filename
        if not link.exists():
            link.symlink_to(cached_file(wheel.sha256))
    return dest


def runtime_version(archive: Path) -> str:
    match = re.match(r"cpython-(\d+\.\d+\.\d+)", archive.name)
    if match is None:
        raise SystemExit(f"cannot read the Python version from {archive.name}")
    return match.group(1)


def mb(size: float) -> str:
    return f"{size / MB:.1f} MB"


def fixture_runtimes(where: Path, linux_runtime: Path) -> Path:
    """The local Linux runtime plus macOS/Windows layout fixtures, for VENVSTACKS_LOCAL_RUNTIMES."""
    where.mkdir(parents=True)
    shutil.copy(linux_runtime, where)
    for platform in ("macosx_arm64", "win_amd64"):
        make_fixture_runtime(where, platform)
    return where


def use_runtimes(ws: Workspace, runtimes: Path) -> None:
    (ws.path / "user.bazelrc").write_text(f"common --repo_env=VENVSTACKS_LOCAL_RUNTIMES={runtimes}\n")


def cold_start(ws: Workspace, targets: list[str]) -> float:
    """Builds once (the repository cache gets every download), then empties the output base; returns server start."""
    ws.bazel("build", *targets)
    ws.shutdown()
    remove(ws.output_base)
    return timed(lambda: ws.bazel("info", "release"))


class Peers:
    """One stack measured every way; adds its rows to the report."""

    def __init__(self, stack: Stack, report: Report, work: Path, runtimes: Path) -> None:
        self.stack, self.report, self.work, self.runtimes = stack, report, work, runtimes
        self.runtime_archive = local_runtime_archive("3.11")
        self.raw: dict[str, Any] = {}
        self.targets = [f"//stacks:{app}" for app in stack.apps]
        self.layers = read_layers(stack.example / "stacks" / "venvstacks_lock.json")
        self.wheels = self.work / "wheels"  # filled once the repository cache has the wheels
        self.deploy_seconds = 0.0
        self.deploy_check = ""
        self.runtime_zst = 0  # bytes of the runtime as tar.zst, shipped once next to uv venvs and pex files

    def row(self, name: str, *args: Any, **kwargs: Any) -> Row:
        return self.report.add(Row(f"{self.stack.name}: {name}", *args, **kwargs))

    def run(self) -> None:
        ws = fresh_workspace(self.stack.example, self.work / "bazel")
        if self.stack.bundle:
            use_runtimes(ws, self.runtimes)  # the same runtime configuration as the 3-platform build
        server = cold_start(ws, self.targets)
        link_wheels(self.layers, self.wheels)
        floor_layers = {
            layer.env_name: (
                self.runtime_archive if layer.kind == "runtime" else None,
                [cached_file(w.sha256) for w in layer.wheels],
            )
            for layer in self.layers
        }
        floor_seconds = floor(floor_layers, self.work / "floor")
        remove(self.work / "floor")
        self.row("floor: tar + unzip + tar.zst of the same files", floor_seconds)
        self.row("Bazel server start (empty output base)", server)
        cold = build(ws, self.targets, "cold")
        self.raw["cold build profile"] = cold.profile
        self.raw["cold build action seconds (summed per mnemonic)"] = cold.action_seconds()
        self.row("cold build vs floor", cold.seconds, cold.seconds / floor_seconds, "<= 1.3x", cold.summary())
        self.row(
            "cold build incl. server start vs floor", server + cold.seconds, (server + cold.seconds) / floor_seconds
        )
        noop = build(ws, self.targets, "noop", profile=False)
        self.row("no-op rebuild", noop.seconds, None, "", noop.summary())
        shipped, deployed = self.deploy(ws)
        self.app_changes(ws, cold)
        ws.shutdown()
        remove(ws.output_base)
        if self.stack.bundle:
            self.three_platforms(cold)
        uv = self.uv(floor_seconds)
        pex = self.pex(floor_seconds)
        venvstacks = self.venvstacks(floor_seconds)
        self.raw["bytes shipped"] = {"this project": shipped, "uv": uv[1], "pex": pex[1], "venvstacks": venvstacks[1]}
        deploy = self.deploy_seconds
        self.row(
            "deploy (unpack + postinstall) vs uv install",
            deploy,
            deploy / uv[0],
            "",
            f"uv: {uv[0]:.2f}s{self.deploy_check}",
        )
        target = self.stack.ship_target
        self.row("bytes shipped vs uv per-app venvs", None, shipped / uv[1], target, f"{mb(shipped)} vs {mb(uv[1])}")
        self.row("bytes shipped vs pex per app", None, shipped / pex[1], target, f"{mb(shipped)} vs {mb(pex[1])}")
        if venvstacks[1]:
            self.row(
                "bytes shipped vs venvstacks (tar.xz)",
                None,
                shipped / venvstacks[1],
                "",
                f"{mb(shipped)} vs {mb(venvstacks[1])}",
            )
        self.row("bytes on disk, deployed vs uv venvs", None, deployed / uv[2], "", f"{mb(deployed)} vs {mb(uv[2])}")

    def deploy(self, ws: Workspace) -> tuple[int, int]:
        """Deploys the published archives into a new directory; returns (bytes shipped, bytes deployed)."""
        stacks = ws.path / "bazel-bin" / "stacks"
        metadata = [stacks / f"{layer.name}.layer" / f"{layer.env_name}-{PLATFORM}.json" for layer in self.layers]
        shipped = sum(json.loads(m.read_text())["archive"]["size"] for m in metadata)
        dest = self.work / "deployed"
        env = dict(os.environ, PYTHONPATH=str(ROOT / "python"))
        command = [sys.executable, "-c", DEPLOY, "deploy", "--to", dest, *metadata]
        self.deploy_seconds = timed(lambda: sh(command, env=env))
        self.deploy_check = starts(
            {app: [dest / f"app-{app}" / "bin" / "python", "-m", Path(m).stem] for app, m in self.stack.apps.items()}
        )
        deployed = tree_bytes(dest)
        remove(dest)
        return shipped, deployed

    def app_changes(self, ws: Workspace, cold: Build) -> None:
        lower = {f"//stacks:{layer.name}" for layer in self.layers if layer.kind != "application"}
        module = ws.path / "stacks" / self.stack.code_change
        module.write_text(module.read_text() + "\n# bench: an app-only change\n")
        code = build(ws, self.targets, "app_code")
        build_file = ws.path / "stacks" / "BUILD.bazel"
        build_file.write_text(build_file.read_text().replace(*self.stack.requirement_change))
        ws.bazel("run", "//stacks:lock")
        requirement = build(ws, self.targets, "app_requirement")
        for what, change in (("code", code), ("requirement", requirement)):
            touched = sum(1 for e in change.ran if e.get("targetLabel") in lower)
            self.raw[f"app {what} change profile"] = change.profile
            self.row(
                f"rebuild after an app {what} change vs cold",
                change.seconds,
                change.seconds / cold.seconds,
                "<= 0.1x",
                f"{change.summary()}; {touched} of them runtime/framework"
                + ("; relock not timed" if what == "requirement" else ""),
            )

    def three_platforms(self, cold: Build) -> None:
        ws = fresh_workspace(self.stack.example, self.work / "bundle")
        use_runtimes(ws, self.runtimes)
        cold_start(ws, [self.stack.bundle])
        bundle = build(ws, [self.stack.bundle], "bundle")
        ws.shutdown()
        remove(self.work / "bundle")
        self.raw["3-platform cold build profile"] = bundle.profile
        self.row(
            "3-platform cold build vs 1-platform",
            bundle.seconds,
            bundle.seconds / cold.seconds,
            "<= 2x",
            f"{bundle.summary()}; macOS/Windows runtimes are layout fixtures",
        )

    def uv(self, floor_seconds: float) -> tuple[float, int, int]:
        """Per app: `uv venv` on the unpacked runtime + `uv pip install` of its wheels. (seconds, shipped, disk)"""
        root = self.work / "uv"
        env = dict(os.environ, UV_CACHE_DIR=str(self.work / "uv-cache"), UV_PYTHON_DOWNLOADS="never", UV_NO_CONFIG="1")
        python = root / "python" / "bin" / "python3"

        def run() -> None:
            root.mkdir()
            sh(["tar", "-xzf", self.runtime_archive, "-C", root])
            for app in self.stack.apps:
                venv = root / f"app-{app}"
                sh([UV, "venv", "--quiet", "--python", python, venv], env=env)
                wheels = [self.wheels / w.filename for w in app_wheels(self.layers, app)]
                if wheels:
                    install = [UV, "pip", "install", "--quiet", "--python", venv / "bin" / "python"]
                    sh([*install, "--no-index", "--no-deps", "--offline", *wheels], env=env)

        seconds = timed(run)
        check = starts(
            {
                app: [root / f"app-{app}" / "bin" / "python", self.stack.example / "stacks" / m]
                for app, m in self.stack.apps.items()
            }
        )
        archives = self.work / "uv-archives"
        archives.mkdir()
        sizes: dict[str, int] = {}

        def pack() -> None:
            sizes["python"] = tar_zst(root / "python", archives / "python.tar.zst")
            for app in self.stack.apps:
                sizes[app] = tar_zst(root / f"app-{app}", archives / f"{app}.tar.zst")

        packing = timed(pack)
        self.runtime_zst = sizes["python"]
        shipped = sum(sizes.values())
        disk = tree_bytes(root)
        for path in (root, archives, self.work / "uv-cache"):
            remove(path)
        self.row(
            "uv: runtime + venv + pip install per app vs floor",
            seconds,
            seconds / floor_seconds,
            "",
            f"cold uv cache; ships {mb(shipped)} (venvs + runtime once, tar.zst {ZSTD_LEVEL}){check}",
        )
        self.row(
            "uv incl. tar.zst of what it ships vs floor",
            seconds + packing,
            (seconds + packing) / floor_seconds,
            "",
            "the floor and this project write archives too",
        )
        return seconds, shipped, disk

    def pex(self, floor_seconds: float) -> tuple[float, int]:
        """One pex file per app from the same wheels, no index. (seconds, bytes shipped incl. the runtime once)"""
        pex = tool(PEX_REQUIREMENT) / "bin" / "pex"
        root = self.work / "pex"
        env = dict(os.environ, PEX_ROOT=str(self.work / "pex-root"))
        runtime = root / "runtime"
        runtime.mkdir(parents=True)
        sh(["tar", "-xzf", self.runtime_archive, "-C", runtime])
        python = runtime / "python" / "bin" / "python3"
        for app, module in self.stack.apps.items():
            (root / "src" / app).mkdir(parents=True)
            shutil.copy(self.stack.example / "stacks" / module, root / "src" / app)

        def run() -> None:
            for app, module in self.stack.apps.items():
                pins = [f"{w.name}=={w.version}" for w in app_wheels(self.layers, app)]
                options = [*PEX_OPTIONS, "--python", python, "--find-links", self.wheels]
                where = ["-D", root / "src" / app, "-m", Path(module).stem, "-o", root / f"{app}.pex"]
                sh([pex, *options, *pins, *where], env=env)

        seconds = timed(run)
        check = starts({app: [python, root / f"{app}.pex"] for app in self.stack.apps}, env=env)
        files = sum((root / f"{app}.pex").stat().st_size for app in self.stack.apps)
        remove(root)
        remove(self.work / "pex-root")
        shipped = files + self.runtime_zst
        self.row(
            "pex: one file per app vs floor",
            seconds,
            seconds / floor_seconds,
            "",
            f"cold PEX_ROOT; ships {mb(shipped)} ({mb(files)} of .pex + the runtime){check}",
        )
        return seconds, shipped

    def venvstacks_spec(self, where: Path, version: str) -> Path:
        """The venvstacks.toml equivalent to the stack's BUILD file, with its launch modules."""
        where.mkdir(parents=True)
        lines = []
        for layer in self.layers:
            section, name = {
                "runtime": ("runtimes", layer.name),
                "framework": ("frameworks", layer.name),
                "application": ("applications", layer.name),
            }[layer.kind]
            lines += [f"[[{section}]]", f"name = {json.dumps(name)}"]
            if layer.kind == "runtime":
                lines.append(f'python_implementation = "cpython@{version}"')
            else:
                frameworks = [n for n in layer.lower if any(x.name == n and x.kind == "framework" for x in self.layers)]
                lines.append(
                    f"frameworks = {json.dumps(frameworks)}" if frameworks else f'runtime = "{layer.lower[0]}"'
                )
            if layer.kind == "application":
                module = self.stack.apps[layer.name]
                shutil.copy(self.stack.example / "stacks" / module, where)
                lines.append(f"launch_module = {json.dumps(module)}")
            lines += [f"requirements = {json.dumps(list(layer.requirements))}", ""]
        spec = where / "venvstacks.toml"
        spec.write_text("\n".join(lines))
        return spec

    def venvstacks(self, floor_seconds: float) -> tuple[float, int]:
        """venvstacks from PyPI on the equivalent stack; (build seconds, bytes shipped), or (0, 0) and why not."""
        version = runtime_version(self.runtime_archive)
        try:
            venvstacks = tool(VENVSTACKS_REQUIREMENT) / "bin" / "venvstacks"
        except RuntimeError as error:
            self.row("venvstacks build", None, None, "", f"not measured: installing it from PyPI failed: {error}")
            return 0.0, 0
        env = dict(os.environ, UV_CACHE_DIR=str(self.work / "vs-uv-cache"))
        # Without a runtime of its own, venvstacks downloads one (pdm + pbs-installer, from GitHub): record why that
        # does not work here, then give it the local runtime where it looks first (<build dir>/cpython@X.Y.Z).
        native = self.venvstacks_spec(self.work / "venvstacks-native", version)
        try:
            sh([venvstacks, "lock", native, "--no-index", "--local-wheels", self.wheels], env=env, timeout=600)
            self.report.facts[f"{self.stack.name}: venvstacks with its own runtime download"] = "works"
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            why = [line.strip(" │╭╮╰╯─") for line in str(error).splitlines()]
            reason = next((line for line in reversed(why) if line), str(error))
            self.report.facts[f"{self.stack.name}: venvstacks with its own runtime download"] = (
                f"fails: {reason}; github.com (where pbs-installer downloads from) is {reachable('github.com')}; "
                f"measured instead with <build dir>/cpython@{version} pre-populated from the local runtime, "
                "which venvstacks uses instead of downloading"
            )
        spec = self.venvstacks_spec(self.work / "venvstacks", version)
        build_dir = spec.parent / "_build"
        wheels = ["--no-index", "--local-wheels", self.wheels]

        def populate() -> None:
            runtime = build_dir / f"cpython@{version}"
            runtime.mkdir(parents=True, exist_ok=True)
            sh(["tar", "-xzf", self.runtime_archive, "-C", runtime, "--strip-components=1"])

        try:
            populate()
            sh([venvstacks, "lock", spec, *wheels], env=env)
            remove(self.work / "vs-uv-cache")
            seconds = timed(lambda: (populate(), sh([venvstacks, "build", spec, "--clean", *wheels], env=env)))
            check = starts(
                {a: [build_dir / f"app-{a}" / "bin" / "python", "-m", Path(m).stem] for a, m in self.stack.apps.items()}
            )
            out = self.work / "venvstacks-out"
            publish = timed(lambda: sh([venvstacks, "publish", spec, "--output-dir", out], env=env))
        except RuntimeError as error:
            self.row("venvstacks build", None, None, "", f"failed: {error}")
            return 0.0, 0
        shipped = sum(p.stat().st_size for p in out.glob("*.tar.xz"))
        self.row(
            "venvstacks build vs floor",
            seconds,
            seconds / floor_seconds,
            "",
            f"venvstacks {VENVSTACKS_REQUIREMENT.partition('==')[2]}, cold uv cache, runtime unpack included{check}",
        )
        self.row("venvstacks publish (tar.xz)", publish, None, "", f"{mb(shipped)} of archives")
        for path in (spec.parent, native.parent, out, self.work / "vs-uv-cache"):
            remove(path)
        return seconds, shipped


def versions() -> dict[str, str]:
    found = {"uv": sh([UV, "--version"]).strip()}
    for requirement in (PEX_REQUIREMENT, VENVSTACKS_REQUIREMENT):
        name, _, version = requirement.partition("==")
        found[name] = version
    return found


def main() -> int:
    report = Report("Peers: the floor, this project, uv, pex and venvstacks on the same stacks", facts=machine_facts())
    report.facts.update(versions())
    report.facts["load average at start"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    work = tempdir("bench-peers-")
    try:
        runtimes = fixture_runtimes(work / "runtimes", local_runtime_archive("3.11"))
        report.facts["runtime"] = local_runtime_archive("3.11").name
        for stack in STACKS:
            print(f"\n{stack.name}: {stack.example.relative_to(ROOT)}", flush=True)
            peers = Peers(stack, report, work / stack.name, runtimes)
            peers.run()
            report.facts[f"{stack.name}: raw"] = peers.raw
            remove(work / stack.name)
    finally:
        remove(work)
    report.facts["load average at end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    report.print()
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "peers.json").write_text(json.dumps(report.as_json(), indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
