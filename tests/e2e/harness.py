"""Runs the real Bazel (through tools/bazel) on copies of example and test workspaces."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tarfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zstandard
from stacktool.digest import sha256_of

ROOT = Path(__file__).resolve().parents[2]
BAZEL = ROOT / "tools" / "bazel"
WORKSPACES = Path(__file__).resolve().parent / "workspaces"
EXAMPLES = ROOT / "examples"
OVERRIDE_PATH = re.compile(r'(local_path_override\(\s*module_name = "rules_venvstacks",\s*path = )"[^"]*"')


@dataclass
class Workspace:
    """A Bazel workspace in a temporary directory, with its own output base and its own directory for the stacks
    `bazel run` deploys ($VENVSTACKS_RUN_DIR, unless the test sets one), both beside the copy."""

    path: Path
    output_base: Path
    launcher: Path = BAZEL  # the tools/bazel of the rules_venvstacks checkout the workspace uses

    @property
    def run_dir(self) -> Path:
        return self.output_base.with_name(f"{self.output_base.name}.run")

    def bazel(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.launcher), f"--output_base={self.output_base}", "--max_idle_secs=900", *args]
        env = {"VENVSTACKS_RUN_DIR": str(self.run_dir), **os.environ}
        # Bazel's server writes non-ASCII text of some messages as Latin-1 (its file name encoding): never fail on it.
        result = subprocess.run(
            cmd, cwd=self.path, env=env, capture_output=True, text=True, errors="replace", check=False
        )
        if check and result.returncode != 0:
            raise AssertionError(f"bazel {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-8000:]}")
        return result

    def bazel_bin(self) -> Path:
        return Path(self.bazel("info", "bazel-bin").stdout.strip())

    def build_counting(self, *args: str) -> Counter[str]:
        """Builds and returns how many actions of each mnemonic really executed (cache hits excluded)."""
        log = self.output_base / "execution_log.json"
        self.bazel("build", f"--execution_log_json_file={log}", *args)
        return Counter(entry["mnemonic"] for entry in read_json_stream(log) if not entry.get("cacheHit"))

    def shutdown(self) -> None:
        self.bazel("shutdown", check=False)

    def discard(self) -> None:
        """Stops the Bazel server and deletes the output base and the deployed stacks (gigabytes for the larger
        examples; pytest would keep them, and it cannot delete Bazel's read-only trees), keeping the copy itself."""
        self.shutdown()
        for tree in (self.output_base, self.run_dir):
            remove_tree(tree)


def remove_tree(tree: Path) -> None:
    """Deletes a directory tree, read-only directories (Bazel makes its outputs read-only) included."""
    if tree.exists():
        subprocess.run(["chmod", "-R", "u+w", str(tree)], check=True)
        shutil.rmtree(tree)


def read_json_stream(path: Path) -> list[dict[str, Any]]:
    """Bazel's --execution_log_json_file: JSON objects one after another."""
    decoder = json.JSONDecoder()
    text = path.read_text()
    entries, index = [], 0
    while True:
        while index < len(text) and text[index].isspace():
            index += 1
        if index >= len(text):
            return entries
        entry, index = decoder.raw_decode(text, index)
        entries.append(entry)


def copy_workspace(source: Path, dest: Path, output_base: Path) -> Workspace:
    """Copies a workspace (without bazel-* links), pointing its rules_venvstacks override at this checkout.

    A checkout under a non-ASCII path is named through an ASCII link beside the copy: Bazel 7 cannot open a
    non-ASCII path written in MODULE.bazel (bazelbuild/bazel#26625; the README says so)."""
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("bazel-*"), symlinks=True)
    checkout = ROOT
    if not str(ROOT).isascii():
        checkout = dest.parent / f"{dest.name}.rules_venvstacks"
        checkout.symlink_to(ROOT, target_is_directory=True)
        assert str(checkout).isascii(), f"{checkout}: the tests need an ASCII temporary directory"
    module = dest / "MODULE.bazel"
    text = module.read_text().replace("@RULES_VENVSTACKS@", str(checkout))
    module.write_text(OVERRIDE_PATH.sub(rf'\1"{checkout}"', text))
    return Workspace(dest, output_base)


# The MLX example's layers: target name -> deployed name.
MLX_LAYERS = {"cpython3_11": "cpython3_11", "mlx": "framework-mlx", "mlx_app": "app-mlx_app"}
# What a cold build of the MLX example runs: the tool's environment (its interpreter and dependencies' zip), the two
# wheels' installs, the runtime's record and the three layers' packs.
MLX_BUILD_MNEMONICS = {
    "VenvstacksToolEnvironment",
    "VenvstacksInstallWheel",
    "VenvstacksRuntimeRecord",
    "VenvstacksPack",
}


def published(ws: Workspace, layer: str, suffix: str) -> Path:
    """A published file of an MLX example layer for linux_x86_64: suffix `.tar.zst`, `.json`, ..."""
    return ws.path / "bazel-bin" / "stacks" / f"{layer}.layer" / f"{MLX_LAYERS[layer]}-linux_x86_64{suffix}"


def assert_same_published_layers(a: Workspace, b: Workspace) -> None:
    """Every MLX example layer was published bit-identically by both workspaces: the same archive (by sha256) and
    the same metadata (byte for byte)."""
    for layer in MLX_LAYERS:
        assert sha256_of(published(b, layer, ".tar.zst")) == sha256_of(published(a, layer, ".tar.zst")), layer
        assert published(b, layer, ".json").read_bytes() == published(a, layer, ".json").read_bytes(), layer


@contextmanager
def open_archive(archive: Path) -> Iterator[tarfile.TarFile]:
    """A published .tar.zst or .tar.gz archive, opened to be read once, member after member."""
    with archive.open("rb") as raw:
        stream: Any = zstandard.ZstdDecompressor().stream_reader(raw) if archive.name.endswith(".zst") else raw
        with tarfile.open(fileobj=stream, mode="r|*") as tar:
            yield tar
