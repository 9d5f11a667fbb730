"""Hashes of an application's launch and support modules, in venvstacks' format (`app_launch_module_hash`):
a module file is `sha256:` + sha256(file name + "sha256:<content sha256>"); a package directory is `sha256/` +
sha256 over a sorted walk (each directory's name, then each file's name and "sha256:<content sha256>")."""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Mapping

from stacktool.archive import Member
from stacktool.contract import ModuleHash
from stacktool.digest import sha256_of
from stacktool.errors import UserError


def _file_entry(name: str, member: Member) -> bytes:
    if member.kind != "file":
        raise UserError(f"{name}: a symlink in a launch or support module; modules are hashed by their files' content")
    digest = sha256_of(member.path) if member.path is not None else hashlib.sha256(member.data).hexdigest()
    return posixpath.basename(name).encode() + f"sha256:{digest}".encode()


def module_hash(files: Mapping[str, Member], site_packages: str, name: str) -> ModuleHash:
    """The hash of module `name` among a layer's `files` (by path in the layer): the `name/` package in
    `site_packages` (which Python imports before a `name.py` beside it), else the `name.py` file, else a `name/`
    namespace directory."""
    package, module = posixpath.join(site_packages, name), posixpath.join(site_packages, f"{name}.py")
    below = sorted(rel for rel in files if rel.startswith(package + "/"))
    if module in files and files[module].kind == "file" and f"{package}/__init__.py" not in files:
        return ModuleHash(name, "sha256:" + hashlib.sha256(_file_entry(module, files[module])).hexdigest())
    if not below and files.get(package, Member("file")).kind != "dir":
        raise UserError(f"module {name} is not in {site_packages or '.'} (neither {name}.py nor {name}/)")
    digest = hashlib.sha256()
    _walk(files, package, below, digest)
    return ModuleHash(name, "sha256/" + digest.hexdigest())


def _walk(files: Mapping[str, Member], directory: str, below: list[str], digest: hashlib._Hash) -> None:
    """Feeds `digest` as a top-down walk of `directory` does (os.walk with sorted subdirectories): its name, its files
    by name, then each subdirectory; `below`: the sorted paths below `directory`."""
    digest.update(posixpath.basename(directory).encode())
    entries: dict[str, list[str]] = {}  # each name directly in `directory` -> the paths below it
    for rel in below:
        entries.setdefault(rel[len(directory) + 1 :].split("/")[0], []).append(rel)
    subdirs = []
    for name, paths in sorted(entries.items()):
        path = f"{directory}/{name}"
        if paths == [path] and files[path].kind != "dir":
            digest.update(_file_entry(path, files[path]))
        else:
            subdirs.append((path, [rel for rel in paths if rel != path]))
    for path, paths in subdirs:
        _walk(files, path, paths, digest)
