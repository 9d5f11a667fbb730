"""Post-install step of a rules_venvstacks layer. Run it with the runtime layer's Python after unpacking the
layers side by side, and again after moving them:

    <deploy dir>/<runtime>/bin/python3 <deploy dir>/<layer>/postinstall.py

For a framework or application layer it writes pyvenv.cfg (pointing at the runtime) and, on Linux and macOS,
the `bin/python_` link to the runtime's interpreter that `bin/python` runs, and share/venvstacks/library_path:
the real directories of the shared libraries lower layers expose in share/venv/dynlib. Needs only the
standard library.
"""

import json
import os
import sys
from pathlib import Path


def main() -> int:
    layer = Path(__file__).resolve().parent
    config = json.loads((layer / "share" / "venvstacks" / "layer.json").read_text(encoding="utf-8"))
    if config["kind"] == "runtime":
        return 0
    runtime = layer.parent / config["runtime"]
    windows = config["windows"]
    interpreter = runtime / ("python.exe" if windows else f"bin/python{config['python']}")
    if not interpreter.exists():
        print(f"postinstall: {layer.name}: runtime layer {config['runtime']!r} not found next to it", file=sys.stderr)
        return 1
    lines = [
        f"home = {interpreter.parent}",
        "include-system-site-packages = false",
        "version = {}.{}.{}".format(*sys.version_info[:3]),
        f"executable = {interpreter}",
        f"venvstacks-layer = {config['env_name']}",
    ]
    (layer / "pyvenv.cfg").write_text("\n".join(lines) + "\n", encoding="utf-8")
    if not windows:
        link = layer / "bin" / "python_"
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(os.path.relpath(interpreter, link.parent))
        (layer / "share" / "venvstacks" / "library_path").write_text(
            os.pathsep.join(_library_dirs(layer.parent, config["lower"])) + "\n", encoding="utf-8"
        )
    return 0


def _library_dirs(root: Path, lower: list) -> list:
    """Directories holding the shared libraries that the lower layers expose, in layer order, without repeats."""
    dirs: list = []
    for env_name in lower:
        dynlib = root / env_name / "share" / "venv" / "dynlib"
        for entry in sorted(dynlib.iterdir()) if dynlib.is_dir() else []:
            directory = str(entry.resolve().parent)
            if directory not in dirs:
                dirs.append(directory)
    return dirs


if __name__ == "__main__":
    sys.exit(main())
