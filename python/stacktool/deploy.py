"""The deploy verbs: unpack published layers side by side, run their postinstall, run or check them.

A deployment directory holds one directory per layer (its env_name). `deploy` verifies each archive against its
metadata, extracts it safely (nothing outside the layer's own directory, no partial layer left on failure) and runs
`postinstall.py` of every layer with the runtime's interpreter.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stacktool.archive import extract_archive
from stacktool.errors import UserError
from stacktool.layout import Layout
from stacktool.link import LAYER_CONFIG
from stacktool.metadata import read_metadata, sha256_of
from stacktool.platforms import platform


class DeployError(UserError):
    """A layer that cannot be deployed; the message names the archive."""


@dataclass(frozen=True)
class DeployedLayer:
    path: Path
    metadata: dict[str, Any]

    @property
    def layout(self) -> Layout:
        python = ".".join(self.metadata["python"]["version"].split(".")[:2])
        return Layout(python, platform(self.metadata["platform"]).is_windows)

    @property
    def python(self) -> Path:
        """The interpreter to run this layer with."""
        if self.metadata["kind"] == "runtime":
            return self.path / self.layout.runtime_python
        return self.path / self.layout.layer_python

    def config(self) -> dict[str, Any]:
        config: dict[str, Any] = json.loads((self.path / LAYER_CONFIG).read_text(encoding="utf-8"))
        return config


def _unpack(metadata_file: Path, dest: Path, incremental: bool) -> DeployedLayer:
    metadata = read_metadata(metadata_file)
    archive = metadata_file.parent / metadata["archive"]["name"]
    expected = metadata["archive"]["sha256"]
    target = dest / metadata["env_name"]
    marker = dest / f".{metadata['env_name']}.sha256"
    if incremental and target.is_dir() and marker.exists() and marker.read_text() == expected:
        return DeployedLayer(target, metadata)
    if not archive.exists():
        raise DeployError(f"{archive} is missing; it must sit next to {metadata_file.name}")
    actual = sha256_of(archive)
    if actual != expected:
        raise DeployError(f"{archive.name} has sha256 {actual}, but {metadata_file.name} says {expected}")
    marker.unlink(missing_ok=True)
    if target.exists() or target.is_symlink():
        shutil.rmtree(target) if target.is_dir() and not target.is_symlink() else target.unlink()
    extract_archive(archive, dest, top=metadata["env_name"])
    marker.write_text(expected)
    return DeployedLayer(target, metadata)


def deploy(metadata_files: list[Path], dest: Path, incremental: bool = False) -> list[DeployedLayer]:
    """Deploys the layers (listed lowest first, the runtime first of all) into `dest`; returns them in order."""
    dest.mkdir(parents=True, exist_ok=True)
    layers = [_unpack(path, dest, incremental) for path in metadata_files]
    runtimes = [layer for layer in layers if layer.metadata["kind"] == "runtime"]
    if not runtimes:
        raise DeployError("no runtime layer among the archives to deploy; pass the runtime's metadata file too")
    for layer in layers:
        runtime = next((r for r in runtimes if r.metadata["env_name"] == layer.metadata["runtime_layer"]), None)
        if runtime is None:
            raise DeployError(f"{layer.metadata['env_name']} needs runtime layer {layer.metadata['runtime_layer']}")
        result = subprocess.run(
            [str(runtime.python), "-X", "utf8", "-I", str(layer.path / "postinstall.py")],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise DeployError(f"postinstall of {layer.metadata['env_name']} failed:\n{result.stderr}")
    return layers


def exec_layer(layer: DeployedLayer, args: list[str]) -> int:
    """Runs the layer's python (applications: their launch module) with `args`; returns the exit status."""
    launch = layer.metadata["launch_module"]
    argv = [str(layer.python), *(["-m", launch] if launch else []), *args]
    if os.name == "posix":
        sys.stdout.flush()
        os.execv(argv[0], argv)
    return subprocess.run(argv, check=False).returncode


_IMPORT_CHECK = """
import importlib, json, sys, traceback
results = {}
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
        results[name] = None
    except BaseException:
        results[name] = traceback.format_exc(limit=3)
print(json.dumps(results))
"""


def check(layers: list[DeployedLayer], launch_args: list[str]) -> list[str]:
    """Imports every package of every layer through the top layer's python and starts its launch module.

    Returns the failures (empty when all is well).
    """
    top = layers[-1]
    names = sorted({n for layer in layers for p in layer.config()["packages"] for n in p["import_names"]})
    failures = []
    result = subprocess.run([str(top.python), "-c", _IMPORT_CHECK, *names], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        return [f"{top.python} could not run the import check:\n{result.stderr}"]
    for name, error in json.loads(result.stdout.splitlines()[-1]).items():
        print(f"import {name}: {'ok' if error is None else 'FAILED'}")
        if error is not None:
            failures.append(f"import {name} in {top.metadata['env_name']}:\n{error}")
    launch = top.metadata["launch_module"]
    if launch:
        run = subprocess.run([str(top.python), "-m", launch, *launch_args], capture_output=True, text=True, check=False)
        print(f"python -m {launch}: exit {run.returncode}\n{run.stdout}{run.stderr}")
        if run.returncode != 0:
            failures.append(f"launch module {launch} exited with {run.returncode}:\n{run.stderr}")
    return failures
