"""The one file digest rules_venvstacks uses everywhere: sha256 (wheels, runtime archives, layer archives, locks)."""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256_of(path: Path) -> str:
    """The hex sha256 of a file's content, read in chunks (`hashlib.file_digest`)."""
    with path.open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()
