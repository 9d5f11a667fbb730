"""Post-install step of a rules_venvstacks layer. Run it with the runtime layer's Python after unpacking the
layers side by side, and again after moving them:

    <deploy dir>/<runtime>/bin/python3 <deploy dir>/<layer>/postinstall.py

For a framework or application layer it writes pyvenv.cfg (pointing at the runtime's interpreter) and, where the
layer's record asks for them (Linux, macOS), the link to the runtime's interpreter that `bin/python` runs and the
file listing the real directories of the shared libraries lower layers expose. Everything it needs to know about
the layout is in the layer's record (share/venvstacks/layer.json, written by rules_venvstacks' compose step).
Needs only the standard library. rules_venvstacks' image step (stacktool.image_layer) writes the same files into
container images with `deployment_files`, for the image's prefix and without running the target's Python.
"""

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

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
    version = "{}.{}.{}".format(*sys.version_info[:3])
    files, links = deployment_files(
        record, str(layer), version, lambda env: _real_libraries(layer.parent / env / record["dynlib_dir"])
    )
    for name, target in links.items():
        link = layer / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target)
    for name, text in files.items():
        (layer / name).write_text(text, encoding="utf-8")
    return 0


def _real_libraries(dynlib: Path) -> list:
    """The real paths of the shared libraries a deployed lower layer exposes: its dynlib entries, resolved."""
    return [str(entry.resolve()) for entry in sorted(dynlib.iterdir())] if dynlib.is_dir() else []


def deployment_files(
    record: dict, layer: str, version: str, real_libraries: Callable[[str], list], path: ModuleType = os.path
) -> tuple[dict, dict]:
    """What postinstall writes into the framework or application layer deployed at `layer` (absolute), as
    ({relative path: text}, {relative path: symlink target}). `version`: the runtime's X.Y.Z; `real_libraries(env)`:
    the real paths of the shared libraries lower layer `env` exposes, in name order; `path`: the target's path
    module (posixpath when rules_venvstacks writes these files into a container image)."""
    interpreter = path.normpath(path.join(path.dirname(layer), record["runtime"], record["runtime_interpreter"]))
    lines = [
        f"home = {path.dirname(interpreter)}",
        "include-system-site-packages = false",
        f"version = {version}",
        f"executable = {interpreter}",
        f"venvstacks-layer = {record['env_name']}",
    ]
    files, links = {"pyvenv.cfg": "\n".join(lines) + "\n"}, {}
    venv_links = record["venv_links"]
    if venv_links:
        base_python = venv_links["base_python"]
        links[base_python] = path.relpath(interpreter, path.dirname(path.join(layer, base_python)))
        dirs: list = []  # the directories of the lower layers' shared libraries, in layer order, without repeats
        for library in (library for env in record["lower"] for library in real_libraries(env)):
            if path.dirname(library) not in dirs:
                dirs.append(path.dirname(library))
        files[venv_links["library_path"]] = path.pathsep.join(dirs) + "\n"
    return files, links


if __name__ == "__main__":
    sys.exit(main())
