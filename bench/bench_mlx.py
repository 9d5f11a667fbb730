#!/usr/bin/env python3
"""Benchmark of the MLX example stack (issue: vertical slice), measured in one run on this machine.

Prints: the cold build (empty output base, warm repository cache) against the floor (plain unzip of the same wheels
+ tar of the same runtime + the same archive compression), the no-op rebuild, and the rebuild after an app-only
change with the actions it executed. Writes bench/out/mlx.json.
"""

from __future__ import annotations

import sys

from common import (
    ROOT,
    Report,
    Row,
    executed,
    floor,
    fresh_workspace,
    local_runtime_archive,
    machine_facts,
    read_json_stream,
    remove,
    stack_wheels,
    tempdir,
    timed,
)

EXAMPLE = ROOT / "examples" / "mlx"
APP_CHANGE = ('requirements = ["mlx"],', 'requirements = ["mlx", "six==1.16.0"],')
RUNTIME_AND_FRAMEWORK = ("cpython3_11", "mlx.layer")


def main() -> int:
    report = Report("MLX stack (examples/mlx), linux_x86_64", facts=machine_facts())
    work = tempdir("bench-mlx-")
    try:
        ws = fresh_workspace(EXAMPLE, work)
        ws.bazel("build", "//stacks:mlx_app")  # warms the repository cache (downloads), then starts over
        ws.shutdown()
        remove(ws.output_base)
        server = timed(lambda: ws.bazel("info", "release"))
        cold, cold_actions = executed(ws, "//stacks:mlx_app")
        wheels = stack_wheels(ws.path / "stacks" / "venvstacks_lock.json", "linux_x86_64")
        layers = {
            env: (local_runtime_archive("3.11") if env == "cpython3_11" else None, w) for env, w in wheels.items()
        }
        floor_seconds = floor(layers, work / "floor")
        report.add(Row("floor: tar + unzip + tar.zst of the same files", floor_seconds))
        report.add(Row("Bazel server start (empty output base)", server))
        report.add(
            Row(
                "cold build (after server start)",
                cold,
                cold / floor_seconds,
                "<= 1.3x",
                f"{sum(cold_actions.values())} actions: {dict(sorted(cold_actions.items()))}",
            )
        )
        report.add(Row("cold build incl. server start", server + cold, (server + cold) / floor_seconds))
        noop, noop_actions = executed(ws, "//stacks:mlx_app")
        report.add(Row("no-op rebuild", noop, None, "<= 2 s", f"{sum(noop_actions.values())} actions"))
        build = ws.path / "stacks" / "BUILD.bazel"
        build.write_text(build.read_text().replace(*APP_CHANGE))
        ws.bazel("run", "//stacks:lock")
        log = ws.output_base / "app_change.json"
        app_seconds = timed(lambda: ws.bazel("build", f"--execution_log_json_file={log}", "//stacks:mlx_app"))
        ran = [e for e in read_json_stream(log) if not e.get("cacheHit")]
        lower = [
            e for e in ran if any(k in o["path"] for o in e.get("actualOutputs", []) for k in RUNTIME_AND_FRAMEWORK)
        ]
        report.add(
            Row(
                "rebuild after an app-only change",
                app_seconds,
                app_seconds / cold,
                "0 lower",
                f"{len(ran)} actions ({', '.join(sorted(e['mnemonic'] for e in ran))}); "
                f"{len(lower)} of them runtime/framework",
            )
        )
        ws.shutdown()
    finally:
        remove(work)
    report.save("mlx")
    return 0


if __name__ == "__main__":
    sys.exit(main())
