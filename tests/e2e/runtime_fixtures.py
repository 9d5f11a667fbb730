"""Layout-faithful python-build-standalone `install_only` fixtures for platforms this host cannot run.

python-build-standalone archives cannot be downloaded here, so cross-platform tests feed these through the same
local-archive override users have (VENVSTACKS_LOCAL_RUNTIMES). They hold PBS's tree for their OS, with binaries
that are only headers: enough to build and inspect layers, not to run them.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from stacktool.platforms import platform as platform_named

ROOT = Path(__file__).resolve().parents[2]
MACHO = b"\xcf\xfa\xed\xfe" + bytes(60)
ELF = b"\x7fELF" + bytes(60)
PE = b"MZ" + bytes(62)


def pbs_triple(platform: str) -> str:
    """python-build-standalone's name of the platform (from the PBS table the module extension reads)."""
    table = json.loads((ROOT / "rules" / "private" / "pbs_runtimes.json").read_text(encoding="utf-8"))
    return str(table["triples"][platform])


def _tree(platform: str, python: str) -> tuple[dict[str, bytes], dict[str, str]]:
    """(files, symlinks) of the archive, every path under `python/`."""
    nodot = python.replace(".", "")
    os_name = platform_named(platform).os
    if os_name == "windows":
        files = {
            "python/python.exe": PE,
            "python/pythonw.exe": PE,
            f"python/python{nodot}.dll": PE,
            "python/DLLs/_ssl.pyd": PE,
            "python/Lib/os.py": b"# fixture\n",
            "python/Lib/venv/scripts/nt/python.exe": PE + b"venv launcher",
            "python/Lib/venv/scripts/nt/pythonw.exe": PE + b"venv gui launcher",
            "python/Lib/site-packages/README.txt": b"fixture\n",
            "python/include/Python.h": b"/* fixture */\n",
        }
        return files, {}
    binary, library, tag = (MACHO, "dylib", "darwin") if os_name == "macos" else (ELF, "so.1.0", "x86_64-linux-gnu")
    files = {
        f"python/bin/python{python}": binary,
        f"python/lib/libpython{python}.{library}": binary,
        f"python/lib/python{python}/os.py": b"# fixture\n",
        f"python/lib/python{python}/lib-dynload/_ssl.cpython-{nodot}-{tag}.so": binary,
        f"python/lib/python{python}/site-packages/README.txt": b"fixture\n",
        f"python/include/python{python}/Python.h": b"/* fixture */\n",
    }
    return files, {"python/bin/python3": f"python{python}", "python/bin/python": f"python{python}"}


def make_fixture_runtime(directory: Path, platform: str, python: str = "3.11") -> Path:
    """Writes `cpython-<python>.99+fixture-<triple>-install_only.tar.gz` into `directory`."""
    archive = directory / f"cpython-{python}.99+fixture-{pbs_triple(platform)}-install_only.tar.gz"
    files, links = _tree(platform, python)
    with tarfile.open(archive, "w:gz") as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755 if data in (MACHO, ELF, PE) else 0o644
            tar.addfile(info, io.BytesIO(data))
        for name, target in sorted(links.items()):
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return archive
