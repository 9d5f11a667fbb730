"""Post-install step of a rules_venvstacks layer. Run it with the runtime layer's Python after unpacking the
layers side by side, and again after moving them:

    <deploy dir>/<runtime>/bin/python3 <deploy dir>/<layer>/postinstall.py

For a framework or application layer it writes pyvenv.cfg (pointing at the runtime's interpreter) and, where the
layer's record asks for them (Linux, macOS), the link to the runtime's interpreter that `bin/python` runs and the
file listing the real directories of the shared libraries lower layers expose. Everything it needs to know about
the layout is in the layer's record (share/venvstacks/layer.json, written by rules_venvstacks' compose step).
Needs only the standard library.
"""

import json
import os
import sys
from pathlib import Path

RECORD = Path("share") / "venvstacks" / "layer.json"


def main() -> int:
    layer = Path(__file__).resolve().parent
    record = json.loads((layer / RECORD).read_text(encoding="utf-8"))
    if record["kind"] == "runtime":
        return 0
    interpreter = layer.parent / record["runtime"] / record["runtime_interpreter"]
    if not interpreter.exists():
        print(f"postinstall: {layer.name}: runtime layer {record['runtime']!r} not found next to it", file=sys.stderr)
        return 1
    lines = [
        f"home = {interpreter.parent}",
        "include-system-site-packages = false",
        "version = {}.{}.{}".format(*sys.version_info[:3]),
        f"executable = {interpreter}",
        f"venvstacks-layer = {record['env_name']}",
    ]
    (layer / "pyvenv.cfg").write_text("\n".join(lines) + "\n", encoding="utf-8")
    links = record["venv_links"]
    if links:
        link = layer / links["base_python"]
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(os.path.relpath(interpreter, link.parent))
        library_dirs = _library_dirs(layer.parent, record["lower"], record["dynlib_dir"])
        (layer / links["library_path"]).write_text(os.pathsep.join(library_dirs) + "\n", encoding="utf-8")
    return 0


def _library_dirs(root: Path, lower: list, dynlib_dir: str) -> list:
    """Directories holding the shared libraries that the lower layers expose, in layer order, without repeats."""
    dirs: list = []
    for env_name in lower:
        dynlib = root / env_name / dynlib_dir
        for entry in sorted(dynlib.iterdir()) if dynlib.is_dir() else []:
            directory = str(entry.resolve().parent)
            if directory not in dirs:
                dirs.append(directory)
    return dirs


if __name__ == "__main__":
    sys.exit(main())
