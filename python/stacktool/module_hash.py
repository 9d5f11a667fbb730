"""Hashes of an application's launch and support modules, in venvstacks' format (`app_launch_module_hash`):
a module file is `sha256:` + sha256(file name + "sha256:<content sha256>"); a package directory is `sha256/` +
sha256 over a sorted walk (each directory's name, then each file's name and "sha256:<content sha256>")."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from stacktool.contract import ModuleHash
from stacktool.digest import sha256_of
from stacktool.errors import UserError


def _file_entry(path: Path) -> bytes:
    return path.name.encode() + f"sha256:{sha256_of(path)}".encode()


def module_hash(site_packages: Path, name: str) -> ModuleHash:
    """The hash of module `name` as installed in `site_packages`: the `name/` package (which Python imports before a
    `name.py` beside it), else the `name.py` file, else a `name/` namespace directory."""
    package, module = site_packages / name, site_packages / f"{name}.py"
    if module.is_file() and not (package / "__init__.py").is_file():
        return ModuleHash(name, "sha256:" + hashlib.sha256(_file_entry(module)).hexdigest())
    if not package.is_dir():
        raise UserError(f"module {name} is not in {site_packages} (neither {name}.py nor {name}/)")
    digest = hashlib.sha256()
    for directory, subdirs, files in os.walk(package):
        subdirs.sort()
        digest.update(Path(directory).name.encode())
        for file in sorted(files):
            digest.update(_file_entry(Path(directory) / file))
    return ModuleHash(name, "sha256/" + digest.hexdigest())
