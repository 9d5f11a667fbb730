from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# harness holds assertions of its own (assert_same_published_layers): let pytest explain their failures too.
pytest.register_assert_rewrite("harness")

from harness import WORKSPACES, Workspace, copy_workspace  # noqa: E402


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Callable[[str], Workspace]]:
    """Factory: workspace("name") copies tests/e2e/workspaces/name into a fresh directory."""
    made: list[Workspace] = []

    def make(name: str) -> Workspace:
        ws = copy_workspace(WORKSPACES / name, tmp_path / name, tmp_path / f"{name}.output_base")
        made.append(ws)
        return ws

    yield make
    for ws in made:
        ws.discard()
