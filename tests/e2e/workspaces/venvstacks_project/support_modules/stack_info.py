"""Support module of the report app: which layers are on sys.path, in order."""

import sys
from pathlib import Path


def layers() -> list[str]:
    """The deployed layer of each site-packages entry on sys.path, nearest first."""
    return [Path(entry).parents[2].name for entry in sys.path if Path(entry).name == "site-packages"]
