"""python/tool_interpreter.py: the helper tool's interpreter, copied from an unpacked runtime with its standard
library zipped (bytecode for the listed modules), as the running interpreter lays its files out."""

from __future__ import annotations

import os
import stat
import sys
import zipfile
from pathlib import Path

import tool_interpreter
from test_bytecode_zip import run_from

X_Y = f"{sys.version_info[0]}.{sys.version_info[1]}"
STDLIB = f"lib/python{X_Y}"
ZIP = f"lib/python{X_Y.replace('.', '')}.zip"


def runtime_tree(where: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (where / name).parent.mkdir(parents=True, exist_ok=True)
        (where / name).write_text(text)
    return where


def test_the_layout_is_the_running_interpreters() -> None:
    if os.name == "nt":
        assert tool_interpreter.layout()[:2] == ("Lib", f"python{X_Y.replace('.', '')}.zip")
    else:
        assert tool_interpreter.layout() == (STDLIB, ZIP, [f"{STDLIB}/lib-dynload"])


def test_the_interpreter_is_copied_and_its_standard_library_zipped(tmp_path: Path) -> None:
    real = runtime_tree(
        tmp_path / "real",
        {
            f"bin/python{X_Y}": "#!interpreter",
            f"lib/libpython{X_Y}.so.1.0": "library",
            f"{STDLIB}/os.py": "SEP = '/'\n",
            f"{STDLIB}/json/__init__.py": "A = 1\n",
            f"{STDLIB}/json/tool.py": "B = 2\n",
            f"{STDLIB}/new_syntax.py": "match = (\n",  # does not compile with this Python: kept as a source
            f"{STDLIB}/README.txt": "not a module",
            f"{STDLIB}/lib-dynload/_json.so": "extension",
        },
    )
    (real / f"bin/python{X_Y}").chmod(0o755)
    # As a sandbox stages it: every file a link to the real one.
    unpacked = tmp_path / "unpacked"
    for path in [p for p in real.rglob("*") if p.is_file()]:
        (unpacked / path.relative_to(real)).parent.mkdir(parents=True, exist_ok=True)
        (unpacked / path.relative_to(real)).symlink_to(path)
    listed = tmp_path / "listed.txt"
    listed.write_text("# the modules the tool imports\njson/__init__.py\nnew_syntax.py\nnot/here.py\n")
    out = tmp_path / "out"

    assert tool_interpreter.main([str(unpacked), str(out), str(listed)]) == 0

    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if not p.is_dir())
    assert written == [
        f"bin/python{X_Y}",
        f"lib/libpython{X_Y}.so.1.0",
        f"{STDLIB}/lib-dynload/_json.so",
        f"{STDLIB}/os.py",
        ZIP,
    ]
    assert not any(p.is_symlink() for p in out.rglob("*"))  # contents, not the sandbox's links
    assert (out / f"{STDLIB}/lib-dynload/_json.so").read_text() == "extension"
    assert stat.S_IMODE((out / f"bin/python{X_Y}").stat().st_mode) & 0o111
    with zipfile.ZipFile(out / ZIP) as archive:
        assert archive.namelist() == ["json/__init__.py", "json/__init__.pyc", "json/tool.py", "new_syntax.py", "os.py"]
    result = run_from(out / ZIP, "import json.tool; print(json.tool.B)")
    assert (result.returncode, result.stdout) == (0, "2\n"), result.stderr
