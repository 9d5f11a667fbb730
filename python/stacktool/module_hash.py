"""Hashes of an application's launch and support modules, in venvstacks' format (`app_launch_module_hash`):
a module file is `sha256:` + sha256(file name + "sha256:<content sha256>"); a package directory is `sha256/` +
sha256 over a sorted walk (each directory's name, then each file's name and "sha256:<content sha256>")."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from stacktool.contract import ModuleHash
from stacktool.digest import sha256_of


def _file_entry(path: Path) -> bytes:
    return path.name.encode() + f"sha256:{sha256_of(path)}".encode()


def module_hash(site_packages: Path, name: str) -> ModuleHash:
    """The hash of module `name` as installed in `site_packages` (a `name.py` file or a `name/` package)."""
    module = site_packages / f"{name}.py"
    if module.is_file():
        return ModuleHash(name, "sha256:" + hashlib.sha256(_file_entry(module)).hexdigest())
    digest = hashlib.sha256()
    for directory, subdirs, files in os.walk(site_packages / name):
        subdirs.sort()
        digest.update(Path(directory).name.encode())
        for file in sorted(files):
            digest.update(_file_entry(Path(directory) / file))
    return ModuleHash(name, "sha256/" + digest.hexdigest())
