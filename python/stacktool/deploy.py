"""The deploy verbs: unpack published layers side by side, run their postinstall, run or check them.

A deployment directory holds one directory per layer (its install target: env_name, or env_name@N for a versioned
layer). `deploy` verifies each archive against its metadata, extracts it safely (nothing outside the layer's own
directory, no partial layer left on failure) and runs `postinstall.py` of every layer with the runtime's interpreter.
The pieces it is made of (`verify_archive`, `postinstall`, `locked`) also serve stacktool.deploy_target, which keeps
several versions of a stack in one target directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stacktool.archive import extract_archive
from stacktool.contract import LAYER_RECORD, LayerRecord, read_json
from stacktool.digest import sha256_of
from stacktool.errors import UserError
from stacktool.metadata import read_metadata


class DeployError(UserError):
    """A layer that cannot be deployed; the message names the archive."""


@dataclass(frozen=True)
class DeployedLayer:
    path: Path
    metadata: dict[str, Any]

    @property
    def record(self) -> LayerRecord:
        return read_json(LayerRecord, self.path / LAYER_RECORD)

    @property
    def python(self) -> Path:
        """The interpreter to run this layer with."""
        return self.path / self.record.interpreter


def verify_archive(archive: Path, expected: str, described_by: Path | str) -> None:
    """Refuses an archive that is missing or whose sha256 is not the one its metadata (`described_by`) gives."""
    if not archive.is_file():
        raise DeployError(f"{archive} is missing; {described_by} names it: copy the archive next to it")
    actual = sha256_of(archive)
    if actual != expected:
        raise DeployError(
            f"{archive} has sha256 {actual}, but {described_by} says {expected}: the download is incomplete or the "
            "file was changed; fetch the published files again"
        )


def postinstall(layer: DeployedLayer, runtime: DeployedLayer) -> None:
    """Runs the layer's postinstall.py with its runtime's interpreter (where the layer finally lives)."""
    result = subprocess.run(
        [str(runtime.python), "-X", "utf8", "-I", str(layer.path / "postinstall.py")],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise DeployError(f"postinstall of {layer.metadata['install_target']} failed:\n{result.stderr}")


def _unpack(metadata_file: Path, dest: Path, incremental: bool) -> DeployedLayer:
    metadata = read_metadata(metadata_file)
    archive = metadata_file.parent / metadata["archive_name"]
    expected = metadata["archive_hashes"]["sha256"]
    target = dest / metadata["install_target"]
    marker = dest / f".{metadata['install_target']}.sha256"
    if incremental and target.is_dir() and marker.exists() and marker.read_text() == expected:
        return DeployedLayer(target, metadata)
    verify_archive(archive, expected, metadata_file)
    marker.unlink(missing_ok=True)
    if target.exists() or target.is_symlink():
        shutil.rmtree(target) if target.is_dir() and not target.is_symlink() else target.unlink()
    extract_archive(archive, dest, top=metadata["install_target"])
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
        runtime = next((r for r in runtimes if r.metadata["install_target"] == layer.metadata["runtime_layer"]), None)
        if runtime is None:
            raise DeployError(
                f"{layer.metadata['install_target']} needs runtime layer {layer.metadata['runtime_layer']}"
            )
        postinstall(layer, runtime)
    return layers


def run_directory(label: str, top_metadata: Path) -> Path:
    """Where `bazel run <label>` deploys its stack: one directory per workspace, target and platform, below
    $VENVSTACKS_RUN_DIR (default: ~/.cache/rules_venvstacks/run), so that checkouts never share one."""
    metadata = read_metadata(top_metadata)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    base = Path(os.environ.get("VENVSTACKS_RUN_DIR") or cache / "rules_venvstacks" / "run")
    workspace = os.environ.get("BUILD_WORKSPACE_DIRECTORY", "")
    key = hashlib.sha256("\0".join((workspace, label, metadata["target_platform"])).encode()).hexdigest()[:16]
    return base / f"{metadata['layer_name']}-{key}"


@contextmanager
def locked(lock_file: Path) -> Iterator[None]:
    """Holds an exclusive lock on `lock_file` (released at the latest when the process execs, exits or is killed)."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("w") as lock:
        if os.name == "posix":  # Windows: no advisory locks in the standard library; runs are not serialized there
            import fcntl

            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def exclusive(deploy_dir: Path) -> AbstractContextManager[None]:
    """Holds a lock on `deploy_dir` (a lock file beside it)."""
    return locked(deploy_dir.parent / f".{deploy_dir.name}.lock")


def exec_layer(layer: DeployedLayer, args: list[str], module: str | None = None) -> int:
    """Runs the layer's python with `args`: `-m module`, else (applications) `-m` their launch module; returns the
    exit status where the process cannot be replaced."""
    launch = module or layer.metadata["app_launch_module"]
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
    except BaseException as error:
        missing = error.name if isinstance(error, ModuleNotFoundError) else None
        results[name] = {"missing": missing, "traceback": traceback.format_exc(limit=3)}
print(json.dumps(results))
"""


def _import_failures(top: DeployedLayer, names: list[str], provided: set[str]) -> tuple[list[str], list[str]]:
    """Imports `names` through the top layer's python: (failures, notes). A module that fails only because a module
    no layer of the stack provides is missing (an optional dependency that is not installed) is a note, not a
    failure; one that fails for a module the stack provides is a broken stack."""
    result = subprocess.run([str(top.python), "-c", _IMPORT_CHECK, *names], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        return [f"{top.python} could not run the import check:\n{result.stderr}"], []
    failures, notes = [], []
    for name, error in json.loads(result.stdout.splitlines()[-1]).items():
        missing = (error or {}).get("missing")
        optional = missing is not None and missing.split(".")[0] not in provided | {name.split(".")[0]}
        print(f"import {name}: {'ok' if error is None else 'skipped' if optional else 'FAILED'}")
        if optional:
            notes.append(f"{name} needs {missing}, which no layer installs (an optional dependency): not checked")
        elif error is not None:
            failures.append(f"import {name} in {top.metadata['install_target']}:\n{error['traceback']}")
    return failures, notes


def check(
    layers: list[DeployedLayer], launch_args: list[str], extra_imports: list[str] = (), skip_imports: list[str] = ()
) -> list[str]:
    """Imports the modules every package of the stack declares (plus `extra_imports`, minus `skip_imports`) through
    the top layer's python and starts its launch module. Returns the failures (empty when all is well)."""
    top = layers[-1]
    provided = {n for layer in layers for p in layer.record.packages for n in p.import_names}
    names = sorted((provided | set(extra_imports)) - set(skip_imports))
    failures, notes = _import_failures(top, names, provided)
    for note in notes:
        print(f"note: {note}")
    launch = top.metadata["app_launch_module"]
    if launch:
        run = subprocess.run([str(top.python), "-m", launch, *launch_args], capture_output=True, text=True, check=False)
        print(f"python -m {launch}: exit {run.returncode}\n{run.stdout}{run.stderr}")
        if run.returncode != 0:
            failures.append(f"launch module {launch} exited with {run.returncode}:\n{run.stderr}")
    return failures
