"""This project's builds of a stack: cold (empty output base, warm repository cache, profiled), no-op, after an
app-only code change and an app-only requirement change, and the 3-platform bundle build."""

from __future__ import annotations

import gzip
import json
import shutil
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import ROOT, Workspace, fresh_workspace, remove, timed
from peer_stacks import StackRun
from runtime_fixtures import make_fixture_runtime


@dataclass
class Action:
    """One of this project's actions that a build executed, as Bazel's JSON trace profile shows it."""

    mnemonic: str
    label: str
    start: float  # seconds after the command started
    seconds: float


@dataclass
class Build:
    seconds: float
    ran: list[Action]  # this project's actions that executed (action cache hits have no event)
    profile: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        counts = Counter(a.mnemonic for a in self.ran)
        return f"{len(self.ran)} actions: {', '.join(f'{m} {n}' for m, n in sorted(counts.items()))}".rstrip(": ")

    def where_the_time_goes(self) -> str:
        """Where a build's time goes: before its first action (loading, analysis, repositories), then the critical
        path of its actions."""
        return (
            f"first action after {self.profile['before the first action (s)']:.2f}s, "
            f"critical path of actions {self.profile['critical path (s)']:.2f}s"
        )

    def action_seconds(self) -> dict[str, float]:
        """Wall time of the executed actions, summed per mnemonic (they run in parallel: more than the build)."""
        total: dict[str, float] = defaultdict(float)
        for a in self.ran:
            total[a.mnemonic] += a.seconds
        return {m: round(s, 2) for m, s in sorted(total.items(), key=lambda item: -item[1])}


def build(ws: Workspace, targets: list[str], tag: str) -> Build:
    """Builds `targets`, timed, and reads what ran from the JSON trace profile (which Bazel writes anyway).

    Not from an execution log: writing one re-hashes every output file, which made the PyTorch-size cold build
    0.8 s slower (15.9 s vs 15.2 s, 3 alternating pairs): the instrument's cost, not the build's."""
    trace = ws.output_base.parent / f"{tag}.profile.gz"
    seconds = timed(
        lambda: ws.bazel("build", f"--profile={trace}", "--experimental_profile_include_target_label", *targets)
    )
    events = trace_events(trace)
    ran = executed_actions(events)
    return Build(seconds, ran, profile_summary(events, ran))


def trace_events(trace: Path) -> list[dict[str, Any]]:
    """The complete events ("ph": "X") of Bazel's JSON trace profile (what `bazel analyze-profile` reads)."""
    with gzip.open(trace, "rt") as f:
        data = json.load(f)
    return [e for e in (data["traceEvents"] if isinstance(data, dict) else data) if e.get("ph") == "X"]


def executed_actions(events: list[dict[str, Any]]) -> list[Action]:
    """This project's actions (mnemonics `Venvstacks*`) that executed: Bazel profiles an action's processing only
    when its action cache check misses."""
    return [
        Action(e["args"]["mnemonic"], e["args"].get("target", ""), e["ts"] / 1e6, e.get("dur", 0) / 1e6)
        for e in events
        if e.get("cat") == "action processing" and e.get("args", {}).get("mnemonic", "").startswith("Venvstacks")
    ]


def profile_summary(events: list[dict[str, Any]], ran: list[Action]) -> dict[str, Any]:
    """Where a build's time goes, from its trace profile's events (whose times count from the command's start) and
    the actions it ran."""

    def secs(e: dict[str, Any]) -> float:
        return round(e.get("dur", 0) / 1e6, 2)

    fetches = sorted((e for e in events if e.get("cat") == "Fetching repository"), key=lambda e: -e.get("dur", 0))
    critical = [e for e in events if e.get("cat") == "critical path component"]
    phases = {e["name"]: secs(e) for e in events if e.get("name") in ("buildTargets", "runAnalysisAndExecutionPhase")}
    return {
        "before the first action (s)": round(min((a.start for a in ran), default=0.0), 2),
        "critical path (s)": round(sum(secs(e) for e in critical), 2),
        "critical path": [f"{secs(e)}s {e['name']}" for e in critical if secs(e) >= 0.1],
        "repository fetches (s, summed)": round(sum(secs(e) for e in fetches), 2),
        "slowest repository fetches": [f"{secs(e)}s {e['name']}" for e in fetches[:3]],
        "sandbox setup (s, summed)": round(
            sum(secs(e) for e in events if e.get("name") in ("sandbox.createFileSystem", "sandbox.delete")), 2
        ),
        "phases (s)": phases,
    }


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


def started_workspace(run: StackRun) -> tuple[Workspace, float]:
    """A fresh checkout of the stack whose downloads are all in the repository cache, its output base empty and its
    server just started; returns it and the server start's seconds."""
    ws = fresh_workspace(run.stack.example, run.work / "bazel")
    if run.stack.bundle:
        use_runtimes(ws, run.runtimes)  # the same runtime configuration as the 3-platform build
    return ws, cold_start(ws, run.targets)


def bazel_alone(run: StackRun, floor_seconds: float) -> None:
    """What any cold Bazel build pays here before its own work: one genrule, and one rule that resolves a toolchain,
    which makes Bazel 7 load every registered toolchain (rules_java's among them)."""
    for target, what in (("one_genrule", "one genrule"), ("one_rule", "one rule that resolves a toolchain")):
        seconds = cold_build_alone(run, target)
        run.row(f"Bazel alone: cold build of {what} vs floor", seconds, seconds / floor_seconds, "", "empty workspace")


def cold_build_alone(run: StackRun, target: str) -> float:
    """The cold build of a target of bench/workspaces/bazel_alone, with the stack's .bazelrc, its server started and
    its output base empty, as for the stack's cold build."""
    where = run.work / "bazel_alone"
    ws = fresh_workspace(ROOT / "bench" / "workspaces" / "bazel_alone", where)
    shutil.copy(run.stack.example / ".bazelrc", ws.path / ".bazelrc")
    ws.bazel("info", "release")
    seconds = timed(lambda: ws.bazel("build", f"//:{target}"))
    ws.shutdown()
    remove(where)
    return seconds


def cold_and_noop(run: StackRun, ws: Workspace, server: float, floor_seconds: float) -> Build:
    """The cold build (rows vs the floor, with and without the server start) and the no-op rebuild; returns the
    cold build."""
    run.row("Bazel server start (empty output base)", server)
    cold = build(ws, run.targets, "cold")
    run.raw["cold build profile"] = cold.profile
    run.raw["cold build action seconds (summed per mnemonic)"] = cold.action_seconds()
    run.row(
        "cold build vs floor",
        cold.seconds,
        cold.seconds / floor_seconds,
        run.stack.cold_target,
        f"{cold.summary()}; {cold.where_the_time_goes()}",
    )
    run.row("cold build incl. server start vs floor", server + cold.seconds, (server + cold.seconds) / floor_seconds)
    noop = build(ws, run.targets, "noop")
    run.row("no-op rebuild", noop.seconds, None, "<= 1 s", noop.summary())
    return cold


def app_changes(run: StackRun, ws: Workspace, cold: Build) -> None:
    """Rebuilds after an app-only code change, then after an app-only requirement change (relocked, untimed)."""
    lower = {f"//stacks:{layer.name}" for layer in run.layers if layer.kind != "application"}
    module = ws.path / "stacks" / run.stack.code_change
    module.write_text(module.read_text() + "\n# bench: an app-only change\n")
    code = build(ws, run.targets, "app_code")
    build_file = ws.path / "stacks" / "BUILD.bazel"
    build_file.write_text(build_file.read_text().replace(*run.stack.requirement_change))
    ws.bazel("run", "//stacks:lock")
    requirement = build(ws, run.targets, "app_requirement")
    for what, change in (("code", code), ("requirement", requirement)):
        touched = sum(1 for a in change.ran if a.label in lower)
        run.raw[f"app {what} change profile"] = change.profile
        run.row(
            f"rebuild after an app {what} change vs cold",
            change.seconds,
            change.seconds / cold.seconds,
            "<= 0.1x",
            f"{change.summary()}; {touched} of them runtime/framework; {change.where_the_time_goes()}"
            + ("; relock not timed" if what == "requirement" else ""),
        )


def three_platforms(run: StackRun, cold: Build) -> None:
    """The cold build of the stack's all-platforms bundle, in a checkout of its own, vs the 1-platform cold build."""
    ws = fresh_workspace(run.stack.example, run.work / "bundle")
    use_runtimes(ws, run.runtimes)
    cold_start(ws, [run.stack.bundle])
    bundle = build(ws, [run.stack.bundle], "bundle")
    ws.shutdown()
    remove(run.work / "bundle")
    run.raw["3-platform cold build profile"] = bundle.profile
    run.row(
        "3-platform cold build vs 1-platform",
        bundle.seconds,
        bundle.seconds / cold.seconds,
        "<= 2x",
        f"{bundle.summary()}; macOS/Windows runtimes are layout fixtures",
    )
