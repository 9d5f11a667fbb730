"""Layer metadata: built from the pack inputs, validated against schemas/layer-metadata.schema.json when written."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from stacktool.errors import UserError

SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "layer-metadata.schema.json"


class MetadataError(UserError):
    """Metadata that does not match its schema (a bug in rules_venvstacks, or a hand-edited file)."""


@cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))


def metadata_version() -> int:
    """The metadata format this tool writes: the schema's `metadata_version`."""
    return int(_validator().schema["properties"]["metadata_version"]["const"])


def validate(metadata: dict[str, Any], where: str) -> None:
    errors = sorted(_validator().iter_errors(metadata), key=lambda e: list(e.path))
    if errors:
        details = "; ".join(f"{'/'.join(map(str, e.path)) or '(top)'}: {e.message}" for e in errors)
        raise MetadataError(f"{where} does not match {SCHEMA_PATH.name}: {details}")


def write_metadata(metadata: dict[str, Any], path: Path) -> None:
    validate(metadata, str(path.name))
    path.write_text(json.dumps(metadata, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def lower_layers(metadata: dict[str, Any]) -> list[str]:
    """install_targets of the layers below a layer, nearest first, the runtime last (none below a runtime)."""
    if metadata["kind"] == "runtime":
        return []
    return [*metadata["required_layers"], metadata["runtime_layer"]]


def read_metadata(path: Path) -> dict[str, Any]:
    metadata: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    validate(metadata, str(path))
    return metadata
