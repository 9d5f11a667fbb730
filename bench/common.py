"""Shared pieces of the benchmarks: timing, commands, sizes, a Bazel workspace driver, the floor, and the report
table."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "python"), str(ROOT / "tests" / "e2e")]

from chart import verdict  # noqa: E402
from harness import Workspace, copy_workspace, read_json_stream, remove_tree  # noqa: E402
from stacktool.archive import write_archive  # noqa: E402

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rules_venvstacks"
REPOSITORY_CACHE = CACHE / "bazel-output-root" / "cache" / "repos" / "v1" / "content_addressable" / "sha256"
TOOLS = CACHE / "bench-tools"
UV = Path(sys.executable).parent / "uv"
MB = 1e6


def timed(func: Callable[[], Any]) -> float:
    """The wall time of one call of `func`, in seconds."""
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def best_of(times: int, func: Callable[[], Any]) -> float:
    """The shortest wall time of `times` calls of `func`, in seconds."""
    return min(timed(func) for _ in range(times))


@dataclass
class Row:
    name: str
    seconds: float | None = None
    ratio: float | None = None
    target: str = ""
    note: str = ""


@dataclass
class Report:
    title: str
    rows: list[Row] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        print(f"  {row.name}: {_fmt(row.seconds)} {row.note}", flush=True)
        return row

    def print(self) -> None:
        print(f"\n{self.title}")
        for key, value in self.facts.items():
            print(f"  {key}: {value}")
        width = max(len(r.name) for r in self.rows)
        print(f"  {'measurement'.ljust(width)}  {'time':>8}  {'ratio':>7}  target   {'verdict':<17} note")
        for r in self.rows:
            ratio = f"{r.ratio:.2f}x" if r.ratio is not None else ""
            judged = verdict(r.ratio, r.target, r.seconds)
            print(f"  {r.name.ljust(width)}  {_fmt(r.seconds):>8}  {ratio:>7}  {r.target:<8} {judged:<17} {r.note}")

    def as_json(self) -> dict[str, Any]:
        return {"title": self.title, "facts": self.facts, "rows": [r.__dict__ for r in self.rows]}

    def save(self, name: str) -> None:
        """Prints the table and writes it to bench/out/<name>.json."""
        self.print()
        out = ROOT / "bench" / "out"
        out.mkdir(exist_ok=True)
        (out / f"{name}.json").write_text(json.dumps(self.as_json(), indent=1) + "\n")


def _fmt(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds:.2f}s"


def machine_facts() -> dict[str, Any]:
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "bazel": subprocess.run(
            [str(ROOT / "tools" / "bazel"), "version"], capture_output=True, text=True, check=False
        ).stdout.splitlines()[0],
    }


def executed(ws: Workspace, *args: str) -> tuple[float, Counter[str]]:
    """Builds; returns the wall time and how many actions of each mnemonic executed (cache hits excluded).

    Counted from Bazel's execution log, the one record that tells a remote cache hit from an executed action; it
    costs time (it re-hashes every output), so the cold-build benchmarks count from the trace profile instead
    (peer_bazel.build)."""
    log = ws.output_base / "bench_execution_log.json"
    seconds = timed(lambda: ws.bazel("build", f"--execution_log_json_file={log}", *args))
    return seconds, Counter(e["mnemonic"] for e in read_json_stream(log) if not e.get("cacheHit"))


def fresh_workspace(source: Path, where: Path) -> Workspace:
    return copy_workspace(source, where / "ws", where / "output_base")


def cached_file(sha256: str) -> Path:
    path = REPOSITORY_CACHE / sha256 / "file"
    if not path.exists():
        raise SystemExit(f"{sha256} is not in Bazel's repository cache ({REPOSITORY_CACHE}); build the stack first")
    return path


def floor(layers: dict[str, tuple[Path | None, list[Path]]], work: Path) -> float:
    """The physical limit of a cold build: unpack exactly the same archives and wheels into empty directories
    (the runtime with `tar`, wheels with `unzip`) and write the same tar.zst archives with the same code."""

    def run() -> None:
        for env_name, (runtime_archive, wheels) in layers.items():
            tree = work / env_name
            tree.mkdir(parents=True)
            if runtime_archive is not None:
                subprocess.run(["tar", "-xzf", str(runtime_archive), "-C", str(tree)], check=True)
            site = tree / "site-packages"
            for wheel in wheels:
                subprocess.run(["unzip", "-q", "-o", str(wheel), "-d", str(site)], check=True)
            write_archive(tree, work / f"{env_name}.tar.zst", top=env_name, fmt="tar.zst")

    return timed(run)


def local_runtime_archive(python: str) -> Path:
    root = subprocess.run([str(ROOT / "tools" / "bazel"), "--print-root"], capture_output=True, text=True).stdout
    found = sorted((Path(root.strip()) / "opt/venvstacks/runtimes").glob(f"cpython-{python}.*-install_only.tar.gz"))
    if not found:
        raise SystemExit(f"no local CPython {python} runtime archive; run tools/bazel once")
    return found[-1]


@contextmanager
def scratch(prefix: str) -> Iterator[Path]:
    """A new temporary directory, removed afterwards (also when the body raises)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        remove(path)


def remove(path: Path) -> None:
    """Deletes a directory tree if there is one, Bazel's read-only output trees included."""
    remove_tree(path)


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


def mb(size: float) -> str:
    """A size in bytes, as megabytes for the report's notes."""
    return f"{size / MB:.1f} MB"
