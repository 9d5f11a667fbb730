"""A deploy target: one directory holding several versions of a stack, switched atomically (docs/deploy.md).

    T/layers/<install_target>-<key>/<install_target>/   a layer, unpacked and postinstalled where it stays
    T/layers/<install_target>-<key>/<lower target>      a symlink to each lower layer's directory (its own slot)
    T/layers/<install_target>-<key>/.complete           written last: the slot is whole
    T/versions/<N>/<install_target>                     a symlink to the layer's directory, for every layer
    T/versions/<N>/stack.json                           what version N holds (its manifest)
    T/current -> versions/<N>                           the active version: one symlink, replaced atomically

A layer finds its lower layers as siblings named by install target (pyvenv.cfg, bin/python_, the site-packages
path file all say `../<install_target>/...`), and postinstall.py writes absolute paths. So each layer lives in a
*slot* of its own whose siblings are links to the slots of its lower layers, and a slot's key hashes the layer's
archive sha256 with its lower layers' keys: the same key means the same bytes postinstalled against the same lower
layers, so a slot never changes once complete and every version that needs it shares it. An app-only change makes
one new slot; a new framework makes new slots for it and everything above it.

Crash safety (a SIGKILL at any point): nothing a complete version uses is ever written again. New slots are made
beside the others and count only once `.complete` exists; a version directory is built under a hidden name and
renamed into place once its links and manifest are written; `current` changes with one `os.replace` of a symlink.
Leftovers of an interrupted run are removed, under the target's lock, by the next run.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import signal
from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stacktool.archive import extract_archive
from stacktool.deploy import DeployedLayer, DeployError, locked, postinstall
from stacktool.deploy_source import PublishedStack
from stacktool.metadata import lower_layers

LAYERS, VERSIONS, CURRENT, MANIFEST = "layers", "versions", "current", "stack.json"
COMPLETE, LOCK, DOWNLOADS, NEXT = ".complete", ".lock", ".downloads", ".next-version"
# Test hook: the process SIGKILLs itself at the Nth step that changes the target (tests/unit/test_deploy_kill.py).
KILL_AT = "VENVSTACKS_DEPLOY_KILL_AT"
_steps = itertools.count(1)


def _step() -> None:
    """Marks one change of the target's files; the test hook kills the process at the one it names."""
    if next(_steps) == int(os.environ.get(KILL_AT) or 0):
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass(frozen=True)
class Version:
    number: int
    path: Path
    manifest: dict[str, Any]

    @property
    def slots(self) -> list[str]:
        return [layer["slot"] for layer in self.manifest["layers"]]


@dataclass(frozen=True)
class InstallReport:
    version: int
    previous: int | None
    unpacked: list[str]  # install targets unpacked by this run
    reused: list[str]  # install targets the target already held
    unpacked_bytes: int  # archive bytes read (downloaded) and unpacked
    stack_bytes: int  # archive bytes of the whole stack version
    new_version: bool  # False: an existing version held exactly these layers and was activated


class Target:
    """The deploy target directory `root`."""

    def __init__(self, root: Path) -> None:
        if os.name != "posix":
            raise DeployError("deploy targets switch versions with symlinks: Linux and macOS only (use `deploy --to`)")
        self.root = root.absolute()

    def check(self, *, create: bool) -> None:
        """Refuses a directory that holds other files than a deploy target's; without `create`, a missing one."""
        if (self.root / LAYERS).is_dir() or (self.root / VERSIONS).is_dir():
            return
        if self.root.exists() and (not self.root.is_dir() or any(p.name != LOCK for p in self.root.iterdir())):
            raise DeployError(f"{self.root}: not a deploy target (it holds other files); choose a new or empty one")
        if not self.root.exists() and not create:
            raise DeployError(f"{self.root}: no deploy target there; make one: `deploy install SOURCE --target DIR`")

    def lock(self) -> AbstractContextManager[None]:
        """Serializes the runs that change the target (released when the process exits or is killed)."""
        return locked(self.root / LOCK)

    def versions(self) -> dict[int, Version]:
        found = {}
        for path in (self.root / VERSIONS).glob("[0-9]*"):
            if path.name.isdigit():
                manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
                found[int(path.name)] = Version(int(path.name), path, manifest)
        return dict(sorted(found.items()))

    def current(self) -> int | None:
        link = self.root / CURRENT
        return int(Path(os.readlink(link)).name) if link.is_symlink() else None

    def tidy(self) -> None:
        """Removes what an interrupted run left behind: partial versions, slots never completed, downloads."""
        leftovers = [self.root / ".current.new", self.root / DOWNLOADS]
        leftovers += [p for p in (self.root / VERSIONS).glob(".*") if p.name != NEXT]
        leftovers += [p for p in (self.root / LAYERS).glob("*") if not (p / COMPLETE).exists()]
        for path in leftovers:
            if path.is_symlink() or path.is_file():
                path.unlink()
                _step()
            elif path.exists():
                _remove_tree(path)

    def activate(self, number: int) -> None:
        """Makes version `number` the current one: one symlink replaced atomically."""
        new = self.root / ".current.new"
        new.unlink(missing_ok=True)
        new.symlink_to(f"{VERSIONS}/{number}")
        _step()
        os.replace(new, self.root / CURRENT)
        _step()


def _remove_tree(path: Path) -> None:
    """Removes a directory tree that no complete version uses."""
    shutil.rmtree(path)
    _step()


def slot_names(layers: Iterable[dict[str, Any]]) -> dict[str, str]:
    """install target -> slot name of every layer (layers lowest first): see the module docstring."""
    keys: dict[str, str] = {}
    for metadata in layers:
        lower = [keys[target] for target in lower_layers(metadata)]
        text = "\0".join([metadata["archive_hashes"]["sha256"], *lower])
        keys[metadata["install_target"]] = hashlib.sha256(text.encode()).hexdigest()[:16]
    return {target: f"{target}-{key}" for target, key in keys.items()}


def _finish_slot(metadata: dict[str, Any], slot: Path, slots: dict[str, str], runtime: dict[str, Any]) -> None:
    """Links the slot's lower layers beside the layer, runs its postinstall there, and marks the slot complete."""
    for lower in lower_layers(metadata):
        (slot / lower).symlink_to(Path("..") / slots[lower] / lower)
        _step()
    layer = DeployedLayer(slot / metadata["install_target"], metadata)
    postinstall(layer, DeployedLayer(slot / runtime["install_target"], runtime) if runtime is not metadata else layer)
    _step()
    (slot / COMPLETE).write_text(metadata["archive_hashes"]["sha256"] + "\n", encoding="utf-8")
    _step()


def _make_slots(target: Target, stack: PublishedStack, missing: list[dict[str, Any]], slots: dict[str, str]) -> None:
    """Fetches and checks the archive of every missing layer (all of them before anything is unpacked), unpacks
    them, then links and postinstalls them, lowest layer first.

    One after the other: unpacking in threads (tarfile holds the GIL) or forked processes measured no faster on
    2 cores (file creation is the kernel's work: GNU tar takes as long for the same archives, in parallel or not), and
    a forked worker outlives a SIGKILL of this process still holding the target's lock."""
    layer_root = target.root / LAYERS
    archives = []
    for metadata in missing:
        archives.append(stack.fetch(metadata, target.root / DOWNLOADS))
        _step()
    for metadata, archive in zip(missing, archives, strict=True):
        slot = layer_root / slots[metadata["install_target"]]
        slot.mkdir(parents=True)
        _step()
        extract_archive(archive, slot, top=metadata["install_target"])
        _step()
    runtimes = {m["install_target"]: m for m in stack.layers if m["kind"] == "runtime"}
    for metadata in missing:
        runtime = runtimes[metadata["install_target"] if metadata["kind"] == "runtime" else metadata["runtime_layer"]]
        _finish_slot(metadata, layer_root / slots[metadata["install_target"]], slots, runtime)


def _manifest(number: int, stack: PublishedStack, slots: dict[str, str], previous: int | None) -> dict[str, Any]:
    fields = ("install_target", "layer_name", "kind", "archive_name", "archive_size", "app_launch_module")
    return {
        "version": number,
        "previous": previous,
        "source": stack.source,
        "summary": stack.summary_name,
        "layers": [
            {k: m[k] for k in fields}
            | {"archive_sha256": m["archive_hashes"]["sha256"], "slot": slots[m["install_target"]]}
            for m in stack.layers
        ],
    }


def _make_version(target: Target, number: int, manifest: dict[str, Any]) -> None:
    """Builds versions/<number> under a hidden name, then renames it into place."""
    partial = target.root / VERSIONS / f".{number}.partial"
    partial.mkdir(parents=True)
    _step()
    for layer in manifest["layers"]:
        (partial / layer["install_target"]).symlink_to(Path("../..") / LAYERS / layer["slot"] / layer["install_target"])
        _step()
    (partial / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    _step()
    partial.rename(target.root / VERSIONS / str(number))
    _step()


def _next_number(target: Target, versions: dict[int, Version]) -> int:
    """A number no version had before (numbers of removed versions are not given again)."""
    counter = target.root / VERSIONS / NEXT
    recorded = int(counter.read_text()) if counter.is_file() else 1
    return max(recorded, max(versions, default=0) + 1)


def install(target: Target, stack: PublishedStack, *, update: bool) -> InstallReport:
    """Installs the published stack version as a new version of the target and activates it; unpacks only the layers
    (slots) the target does not hold. `update`: refuse a target with no active version."""
    target.check(create=not update)
    with target.lock():
        previous = target.current()
        if update and previous is None:
            raise DeployError(f"{target.root}: no active version to update; use `deploy install` for the first one")
        target.tidy()
        slots = slot_names(stack.layers)
        layer_root = target.root / LAYERS
        missing = [m for m in stack.layers if not (layer_root / slots[m["install_target"]] / COMPLETE).exists()]
        try:
            _make_slots(target, stack, missing, slots)
        except Exception:
            target.tidy()  # no partial slot stays behind an error (a kill leaves them to the next run)
            raise
        shutil.rmtree(target.root / DOWNLOADS, ignore_errors=True)
        versions = target.versions()
        wanted = [slots[m["install_target"]] for m in stack.layers]
        same = next((v for v in versions.values() if v.slots == wanted), None)
        number = same.number if same else _next_number(target, versions)
        if same is None:
            _make_version(target, number, _manifest(number, stack, slots, previous))
            _write_counter(target, number + 1)
        if previous != number:
            target.activate(number)
    unpacked = {m["install_target"] for m in missing}
    return InstallReport(
        version=number,
        previous=previous,
        unpacked=[m["install_target"] for m in missing],
        reused=[m["install_target"] for m in stack.layers if m["install_target"] not in unpacked],
        unpacked_bytes=sum(m["archive_size"] for m in missing),
        stack_bytes=sum(m["archive_size"] for m in stack.layers),
        new_version=same is None,
    )


def _write_counter(target: Target, value: int) -> None:
    counter = target.root / VERSIONS / NEXT
    partial = counter.with_name(f"{NEXT}.partial")
    partial.write_text(f"{value}\n", encoding="utf-8")
    os.replace(partial, counter)
    _step()


def rollback(target: Target, to: int | None) -> tuple[int, int]:
    """Activates version `to`, by default the one active before the current one was installed; unpacks nothing.
    Returns (from, to)."""
    target.check(create=False)
    with target.lock():
        versions = target.versions()
        current = target.current()
        if current is None:
            raise DeployError(f"{target.root}: no active version to roll back from")
        wanted = to if to is not None else versions[current].manifest["previous"]
        if wanted is None:
            raise DeployError(f"{target.root}: version {current} was the first one installed; nothing to roll back to")
        if wanted not in versions:
            kept = ", ".join(map(str, versions)) or "none"
            raise DeployError(f"{target.root}: version {wanted} is not there (removed by gc?); kept versions: {kept}")
        target.activate(wanted)
        return current, wanted


def gc(target: Target, keep: int) -> tuple[list[int], list[str]]:
    """Keeps the current version, the one `rollback` returns to, and the newest others up to `keep` versions in all;
    removes the other versions, then every slot no kept version uses. Returns (removed versions, removed slots)."""
    target.check(create=False)
    if keep < 1:
        raise DeployError(f"--keep {keep}: keep at least 1 version")
    with target.lock():
        target.tidy()
        versions = target.versions()
        current = target.current()
        kept = {current, versions[current].manifest["previous"]} - {None} if current is not None else set()
        for number in reversed(versions):
            if len(kept) >= keep:
                break
            kept.add(number)
        removed = [n for n in versions if n not in kept]
        for number in removed:
            hidden = target.root / VERSIONS / f".{number}.removing"
            versions[number].path.rename(hidden)
            _step()
            _remove_tree(hidden)
        used = {slot for n in kept if n in versions for slot in versions[n].slots}
        dropped = sorted(p.name for p in (target.root / LAYERS).glob("*") if p.name not in used)
        for name in dropped:
            (target.root / LAYERS / name / COMPLETE).unlink(missing_ok=True)  # first: a kill leaves no "complete" rest
            _step()
            _remove_tree(target.root / LAYERS / name)
        return removed, dropped


def describe(target: Target) -> list[dict[str, Any]]:
    """Every version of the target with its manifest, and which one is current."""
    target.check(create=False)
    current = target.current()
    return [v.manifest | {"current": v.number == current} for v in target.versions().values()]
