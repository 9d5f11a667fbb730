"""Inputs as Bazel stages them: sandboxes present each file of an input tree as an absolute symlink to the real file.

A tree's own links are relative, so following absolute links leads to what the tree really holds.
"""

from __future__ import annotations

import os
from pathlib import Path


def unstaged(path: Path) -> Path:
    """The real entry behind `path`: a file, a directory, or a relative symlink of the tree itself."""
    while path.is_symlink():
        target = os.readlink(path)
        if not os.path.isabs(target):
            return path
        path = Path(target)
    return path
