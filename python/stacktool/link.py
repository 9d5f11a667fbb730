"""The files that chain a layer to the layers below it at run time.

- `bin/python` (Linux, macOS): a wrapper that makes the shared libraries of lower layers findable
  (those listed in their `share/venv/dynlib`, as in venvstacks) and runs the runtime's interpreter as this
  layer's python;
- `_venvstacks_layers.pth` + `.py` + `.json` in site-packages: the lower layers' site-packages, in order;
- `share/venv/dynlib/`: links to this layer's own shared libraries, for the layers above it (Linux, macOS;
  Windows layers add the lower layers' `Library/bin` with `os.add_dll_directory` instead);
- `Scripts/python.exe` (Windows): the runtime's venv launcher, which starts the runtime's python.exe as this
  layer's python (it reads pyvenv.cfg);
- `share/venv/metadata/venvstacks_layer.json`: venvstacks' deployed layer config, for tools that read venvstacks'
  layers (our postinstall.py reads the layer's LayerRecord, which holds the same paths and more).
All paths are relative; `postinstall.py` writes what needs absolute paths (pyvenv.cfg, the library path).
"""

from __future__ import annotations

import fnmatch
import json
import posixpath
from collections.abc import Mapping
from pathlib import Path

from stacktool.archive import Member
from stacktool.contract import LayerRecord
from stacktool.errors import UserError
from stacktool.layout import Layout

DYNLIB_DIR = "share/venv/dynlib"
WINDOWS_DLL_DIR = "Library/bin"  # where Windows layers keep DLLs for the layers above (venvstacks' convention)
LIBRARY_PATH_FILE = "share/venvstacks/library_path"
BASE_PYTHON_LINK = "bin/python_"  # written by postinstall.py: the runtime's interpreter, which bin/python runs
VENVSTACKS_LAYER_CONFIG = "share/venv/metadata/venvstacks_layer.json"
INJECTED = Path(__file__).resolve().parent / "injected"


class LinkError(UserError):
    """Layer contents that cannot be exposed to upper layers as they are; the message names the fix."""


def lower_site_packages(layout: Layout, lower: list[str]) -> list[str]:
    """Each lower layer's site-packages, relative to this layer's site-packages."""
    return [f"{layout.up_from_site_packages}/../{env}/{layout.site_packages}" for env in lower]


def venvstacks_layer_config(record: LayerRecord, layout: Layout) -> bytes:
    """VENVSTACKS_LAYER_CONFIG of the layer `record` describes, with venvstacks' fields (paths relative to the layer;
    lower layers' site-packages in C3 order then the runtime's; the frameworks' shared library directories)."""
    frameworks = list(record.lower[:-1])
    config: dict[str, object] = {
        "python": record.interpreter,
        "py_version": record.runtime_source.python_version,
        "base_python": record.interpreter
        if record.kind == "runtime"
        else f"../{record.runtime}/{record.runtime_interpreter}",
        "site_dir": layout.site_packages,
        "pylib_dirs": [f"../{env}/{layout.site_packages}" for env in record.lower],
        "dynlib_dirs": [f"../{env}/{WINDOWS_DLL_DIR if layout.windows else DYNLIB_DIR}" for env in frameworks],
    }
    if record.launch_module:
        config["launch_module"] = record.launch_module.name
    return (json.dumps(config, indent=2, sort_keys=True) + "\n").encode()


def python_wrapper(var: str) -> str:
    """bin/python of a POSIX framework or application layer.

    postinstall.py writes the directories of lower layers' shared libraries into share/venvstacks/library_path
    (their real directories, not share/venv/dynlib: a library loaded through a link there would resolve its own
    `$ORIGIN`-relative dependencies from the wrong place). `var` is LD_LIBRARY_PATH or DYLD_LIBRARY_PATH.
    """
    return (
        "#!/usr/bin/env bash\n"
        f"# This layer's python (rules_venvstacks): the runtime's interpreter ({BASE_PYTHON_LINK}, linked by\n"
        "# postinstall.py) started as this virtual environment's python, with lower layers' libraries findable.\n"
        'bin_dir=$(cd -- "$(dirname -- "$(realpath -- "$0")")" && pwd)\n'
        "lib_path=\n"
        f'library_path_file="$bin_dir/../{LIBRARY_PATH_FILE}"\n'
        'if [ -r "$library_path_file" ]; then read -r lib_path <"$library_path_file" || true; fi\n'
        f'if [ -n "$lib_path" ]; then export {var}=${{{var}:+${var}:}}$lib_path; fi\n'
        f'exec -a "$bin_dir/python" "$bin_dir/{BASE_PYTHON_LINK.removeprefix("bin/")}" "$@"\n'
    )


def layers_path_files(layout: Layout, lower: list[str]) -> dict[str, bytes]:
    """site-packages files that add the lower layers to sys.path (and, on Windows, their DLL directories)."""
    config = {
        "site_packages": lower_site_packages(layout, lower),
        "dll_directories": [f"{layout.up_from_site_packages}/../{env}/{WINDOWS_DLL_DIR}" for env in lower]
        if layout.windows
        else [],
    }
    site = layout.site_packages
    return {
        f"{site}/_venvstacks_layers.pth": b"import _venvstacks_layers\n",
        f"{site}/_venvstacks_layers.py": (INJECTED / "_venvstacks_layers.py").read_bytes(),
        f"{site}/_venvstacks_layers.json": (json.dumps(config, indent=1) + "\n").encode(),
    }


def is_shared_library(name: str) -> bool:
    """A shared library others may link against: `libx.so` / `x.dylib`, not an extension module."""
    stem, dot, suffix = name.rpartition(".")
    if not dot or suffix not in ("so", "dylib"):
        return False
    return not (".cpython-" in stem or stem.endswith(".abi3") or ".pypy" in stem)


def shared_libraries(files: Mapping[str, Member], layout: Layout, exclude: list[str]) -> dict[str, str]:
    """basename -> path (relative to the layer) of the shared libraries in site-packages among a layer's `files`,
    minus excluded ones; in the order of a walk of site-packages (directory, then name), which decides the message
    when two have one name."""
    found: dict[str, str] = {}
    prefix = layout.site_packages + "/"
    in_site = (rel[len(prefix) :] for rel, member in files.items() if rel.startswith(prefix) and member.kind != "dir")
    for relative in sorted(in_site, key=posixpath.split):
        name = posixpath.basename(relative)
        if not is_shared_library(name) or any(fnmatch.fnmatch(relative, p) for p in exclude):
            continue
        if name in found:
            raise LinkError(
                f"two shared libraries named {name} in site-packages: {found[name]} and {relative}; add one "
                "of them (or a pattern such as 'pkg/*') to the layer's dynlib_exclude"
            )
        found[name] = relative
    return {name: f"{layout.site_packages}/{relative}" for name, relative in found.items()}


def windows_venv_launchers() -> dict[str, tuple[str, ...]]:
    """Scripts/<name> -> where a Windows runtime layer may hold it, newest layout first.

    CPython 3.13 ships `venvlauncher.exe`/`venvwlauncher.exe`; older versions `python.exe`/`pythonw.exe`.
    """
    base = "Lib/venv/scripts/nt"
    return {
        "Scripts/python.exe": (f"{base}/venvlauncher.exe", f"{base}/python.exe"),
        "Scripts/pythonw.exe": (f"{base}/venvwlauncher.exe", f"{base}/pythonw.exe"),
    }
