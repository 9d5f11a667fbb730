#!/usr/bin/env python3
"""Deploy as a product (issue 12): examples/sklearn's two-app stack published, installed into a deploy target, then
updated to a second published version in which one app's code changed.

- full deploy: `stacktool deploy install` of version 1 into a new target (verify, unpack in parallel, postinstall),
  against uv making the same apps' environments from the same wheels (the local runtime unpacked, a venv per app,
  `uv pip install` of every wheel the app needs, cold uv cache: bench/peer_uv.py);
- update: `stacktool deploy update` to version 2, against the full deploy; bytes read and unpacked against the
  stack's archive bytes.

    $(python3 tools/devenv.py) bench/bench_deploy.py      # writes bench/out/deploy.json (bench/chart.py draws it)
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from common import (
    ROOT,
    Report,
    Row,
    fresh_workspace,
    local_runtime_archive,
    machine_facts,
    mb,
    remove,
    scratch,
    sh,
    starts,
    timed,
)
from peer_stacks import STACKS, StackRun, link_wheels
from peer_uv import install as uv_install

CLI = "import sys; from stacktool.cli import main; sys.exit(main(sys.argv[1:]))"
UNPACKED = re.compile(r"^unpacked (?P<layers>.+): (?P<part>\d+) of the stack's (?P<whole>\d+) archive bytes", re.M)
TARGETS = {"update": 0.1, "bytes": 0.05, "full": 0.5}


def deploy(*args: str | Path) -> str:
    return sh([sys.executable, "-c", CLI, "deploy", *args], env=dict(os.environ, PYTHONPATH=str(ROOT / "python")))


def main() -> int:
    report = Report("Deploy targets: examples/sklearn (two apps) installed, then updated after an app-only change")
    report.facts |= machine_facts()
    stack = next(s for s in STACKS if s.name == "sklearn")
    with scratch("bench-deploy-") as work:
        ws = fresh_workspace(stack.example, work)
        v1, v2 = work / "v1", work / "v2"
        try:
            ws.bazel("run", "//stacks:release.publish", "--", str(v1))
            launch = ws.path / "stacks" / stack.code_change
            launch.write_text(launch.read_text() + "\n# an app-only change\n")
            ws.bazel("run", "//stacks:release.publish", "--", str(v2))
        finally:
            ws.shutdown()

        target, output = work / "target", []
        fulls = []
        for _ in range(2):
            remove(target)
            fulls.append(timed(lambda: output.append(deploy("install", v1, "--target", target))))
        full = min(fulls)
        installed = UNPACKED.search(output[-1])
        assert installed is not None, output[-1]
        update = timed(lambda: output.append(deploy("update", v2, "--target", target)))
        updated = UNPACKED.search(output[-1])
        assert updated is not None, output[-1]
        current = target / "current"
        apps = {app: [current / f"app-{app}/bin/python", "-m", Path(m).stem] for app, m in stack.apps.items()}
        check = starts(apps)
        part, whole = int(updated["part"]), int(updated["whole"])

        run = StackRun(stack, report, work / "uv", local_runtime_archive("3.11"), work)
        run.work.mkdir()
        link_wheels(run.layers, run.wheels)
        env = dict(os.environ, UV_CACHE_DIR=str(run.work / "uv-cache"), UV_PYTHON_DOWNLOADS="never", UV_NO_CONFIG="1")
        uv = timed(lambda: uv_install(run, run.work / "root", env))

    ratios = {"update": update / full, "bytes": part / whole, "full": full / uv}
    report.facts |= {
        "full deploy unpacked": installed["layers"],
        "update unpacked": updated["layers"],
        "stack archive bytes": whole,
    }
    report.add(Row("full deploy (install v1 into a new target)", full, None, "", f"best of 2; {mb(whole)} of archives"))
    report.add(
        Row(
            "update after an app-only change vs full deploy",
            update,
            ratios["update"],
            f"<= {TARGETS['update']}x",
            f"unpacked {updated['layers']}{check}",
        )
    )
    report.add(
        Row(
            "bytes the update reads and unpacks vs the stack's",
            None,
            ratios["bytes"],
            f"<= {TARGETS['bytes']}x",
            f"{part / 1e3:.1f} kB of {mb(whole)}",
        )
    )
    report.add(
        Row(
            "full deploy vs uv venv + pip install per app",
            full,
            ratios["full"],
            f"<= {TARGETS['full']}x",
            f"uv {uv:.2f}s (cold uv cache, same wheels)",
        )
    )
    report.save("deploy")
    return 0 if all(ratios[k] <= TARGETS[k] for k in TARGETS) else 1


if __name__ == "__main__":
    sys.exit(main())
