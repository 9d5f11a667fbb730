"""Support module of the report app: which layers are on sys.path, in order."""

import sys
from pathlib import Path


def layers() -> list[str]:
    """The deployed layer of each site-packages entry on sys.path, nearest first."""
    names = []
    for entry in sys.path:
        path = Path(entry)
        if path.name == "site-packages":
            names.append(path.parents[2].name)  # <layer>/lib/pythonX.Y/site-packages
    return names
