#!/usr/bin/env python3
"""Benchmark of remote caching on the MLX example stack (issue: CI caching and remote execution).

A real HTTP cache (nginx WebDAV on loopback, started and stopped here). Every row is a clean checkout at a new path
with a new output base; Bazel's repository cache of downloads stays warm, as on a CI runner that keeps it. Each build
is timed in two parts: `--nobuild` (fetching the external repositories + analysis, which no remote cache saves with
Bazel 7) and then the build itself (the execution phase: actions, or remote cache lookups and downloads).

Rows: the cold build with no remote cache; the cold build that fills an empty remote cache (the reference); the
same build from the warm cache with the default downloads (--remote_download_toplevel), building without the bytes
(--remote_download_minimal), and without the bytes with the external repositories vendored by an earlier checkout
(--vendor_dir, a directory the runner keeps). Writes bench/out/remote.json.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from common import ROOT, Report, Row, Workspace, executed, fresh_workspace, machine_facts, scratch, timed

EXAMPLE = ROOT / "examples" / "mlx"
TARGET = "//stacks:mlx_app"
RATIO_TARGET = "<= 0.15x"  # a clean checkout with a warm remote cache vs a cold build (issue 15)


@dataclass
class Timing:
    server: float
    fetch_analysis: float
    execution: float
    actions: Counter[str]

    @property
    def build(self) -> float:
        return self.fetch_analysis + self.execution

    def note(self) -> str:
        ran = f"{sum(self.actions.values())} actions executed" if self.actions else "0 actions executed"
        return (
            f"fetch+analysis {self.fetch_analysis:.2f}s + execution {self.execution:.2f}s; {ran}; "
            f"server start {self.server:.2f}s"
        )


def clean_checkout_build(work: Path, name: str, *flags: str, vendor_to: Path | None = None) -> Timing:
    """Builds the example in a fresh copy at a new path with a new output base; optionally vendors its external
    repositories afterwards."""
    ws: Workspace = fresh_workspace(EXAMPLE, work / name)
    try:
        server = timed(lambda: ws.bazel("info", "release"))
        fetch_analysis = timed(lambda: ws.bazel("build", "--nobuild", TARGET, *flags))
        execution, actions = executed(ws, TARGET, *flags)
        if vendor_to is not None:
            ws.bazel("vendor", TARGET, f"--vendor_dir={vendor_to}")
        return Timing(server, fetch_analysis, execution, actions)
    finally:
        ws.shutdown()


def remote_cache_rows(report: Report, work: Path, url: str) -> None:
    """The cold build that fills the empty remote cache at `url` (the reference), then clean checkouts using it."""
    cache = f"--remote_cache={url}"
    vendor = work / "vendor"
    cold = clean_checkout_build(work, "cold", cache, vendor_to=vendor)
    report.add(Row("cold build, empty remote cache (reference)", cold.build, 1.0, "", cold.note()))
    report.add(Row("  its execution phase", cold.execution, 1.0))
    for title, name, flags in (
        ("warm cache, clean checkout (toplevel)", "toplevel", [cache]),
        ("warm cache, clean checkout (minimal)", "minimal", [cache, "--remote_download_minimal"]),
        (
            "warm cache + vendored repositories (minimal)",
            "vendored",
            [cache, "--remote_download_minimal", f"--vendor_dir={vendor}"],
        ),
    ):
        warm = clean_checkout_build(work, name, *flags)
        report.add(Row(title, warm.build, warm.build / cold.build, RATIO_TARGET, warm.note()))
        report.add(Row("  its execution phase", warm.execution, warm.execution / cold.execution, RATIO_TARGET))


def main() -> int:
    import servers  # tests/e2e/servers.py: on sys.path once common is imported

    report = Report(
        "Remote cache, MLX stack (examples/mlx), linux_x86_64, nginx WebDAV on loopback", facts=machine_facts()
    )
    with scratch("bench-remote-") as work:
        clean_checkout_build(work, "warmup")  # fills the repository cache (downloads); not measured
        local = clean_checkout_build(work, "local")
        report.add(Row("cold build, no remote cache", local.build, None, "", local.note()))
        with servers.nginx_cache() as url:
            remote_cache_rows(report, work, url)
    report.save("remote")
    return 0


if __name__ == "__main__":
    sys.exit(main())
