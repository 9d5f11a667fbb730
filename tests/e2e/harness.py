"""Runs the real Bazel (through tools/bazel) on copies of test workspaces."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BAZEL = ROOT / "tools" / "bazel"
WORKSPACES = Path(__file__).resolve().parent / "workspaces"


@dataclass
class Workspace:
    """A Bazel workspace in a temporary directory, with its own output base."""

    path: Path
    output_base: Path

    def bazel(
        self, *args: str, check: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        cmd = [str(BAZEL), f"--output_base={self.output_base}", "--max_idle_secs=600", *args]
        result = subprocess.run(cmd, cwd=self.path, capture_output=True, text=True, check=False, env=env)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stderr[-6000:]}")
        return result

    def bazel_bin(self) -> Path:
        return Path(self.bazel("info", "bazel-bin").stdout.strip())

    def shutdown(self) -> None:
        self.bazel("shutdown", check=False)


def copy_workspace(name: str, dest: Path, output_base: Path) -> Workspace:
    """Copies tests/e2e/workspaces/<name> to dest, pointing its rules_venvstacks override at this checkout."""
    shutil.copytree(WORKSPACES / name, dest)
    module = dest / "MODULE.bazel"
    module.write_text(module.read_text().replace("@RULES_VENVSTACKS@", str(ROOT)))
    return Workspace(dest, output_base)
