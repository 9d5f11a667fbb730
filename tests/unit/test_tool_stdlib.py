"""rules/private/tool_stdlib_bytecode.txt lists every standard library file the helper tool imports (the tool
interpreter's action compiles those; tools/list_tool_stdlib.py writes the list)."""

from __future__ import annotations

import sys

import list_tool_stdlib
import pytest


@pytest.mark.skipif(
    f"{sys.version_info[0]}.{sys.version_info[1]}" != list_tool_stdlib.TOOL_PYTHON,
    reason=f"the list is of the tool interpreter's Python {list_tool_stdlib.TOOL_PYTHON}; the tests run another",
)
def test_the_list_holds_what_the_tool_imports() -> None:
    text = list_tool_stdlib.imported_stdlib_files()
    assert "json/decoder.py" in text and "zipfile.py" in text  # the list is made by importing the tool
    assert list_tool_stdlib.LIST.read_text() == text, "stale: run tools/list_tool_stdlib.py"
