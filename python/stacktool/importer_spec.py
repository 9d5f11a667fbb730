"""Reading a venvstacks stack specification (venvstacks.toml, venvstacks 0.8) for the importer: the top level.

Every key maps to an attribute or to one message naming the key, the layer and what to do: an error (the import is
refused, nothing is written) when dropping the key would change what the stack locks or installs, a warning when it
would not. Layer keys are read by importer_layers.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from stacktool.errors import UserError
from stacktool.importer_graph import Layer, Problems
from stacktool.importer_layers import convert_layer, index_key

KINDS = {"runtimes": "runtime", "frameworks": "framework", "applications": "application"}
# uv settings ([tool.uv], venvstacks.uv.toml) that choose where packages come from (rules_venvstacks issue #11).
UV_INDEX_KEYS = {
    "index", "sources", "index-url", "extra-index-url", "find-links", "no-index", "index-strategy",
    "keyring-provider", "allow-insecure-host",
}  # fmt: skip
# uv settings that venvstacks replaces, or that do not change what is locked: dropped with a warning.
UV_IGNORED_KEYS = {
    "cache-keys": "venvstacks replaces it too",
    "no-build": "rules_venvstacks installs wheels only, as venvstacks does",
    "environments": "each layer is resolved for each of its platforms",
    **dict.fromkeys(
        ["cache-dir", "no-cache", "native-tls", "offline", "concurrent-downloads", "concurrent-builds",
         "concurrent-installs", "python-preference", "python-downloads", "link-mode", "compile-bytecode",
         "required-version", "preview"],
        "it does not change what is locked",
    ),
}  # fmt: skip


class SpecRefused(UserError):
    """The spec cannot be imported: the message names every key to fix; nothing was written."""


@dataclass(frozen=True)
class Stack:
    spec: Path
    layers: tuple[Layer, ...]
    exclude_newer: str  # [tool.uv] exclude-newer, for stack_lock


def read_spec(spec: Path, default_index: bool = False) -> tuple[Stack, list[str]]:
    """The stack the spec describes and the warnings; raises SpecRefused naming every key it cannot import."""
    try:
        data = tomllib.loads(spec.read_text(encoding="utf-8"))
    except (FileNotFoundError, IsADirectoryError):
        raise SpecRefused(f"{spec} does not exist; give the path of a venvstacks.toml") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise SpecRefused(f"{spec} is not a valid TOML file ({error}); fix it first") from None
    problems = Problems(spec.name, default_index)
    layers: dict[str, Layer] = {}
    for table, kind in KINDS.items():
        entries = data.get(table, [])
        if not isinstance(entries, list):
            problems.error(f"[{table}]", f"must be an array of tables; write each layer as [[{table}]]")
            continue
        for number, raw in enumerate(entries, 1):
            layer = convert_layer(kind, table, number, raw, layers, problems, spec.parent)
            if layer is not None:
                layers[layer.name] = layer
    exclude_newer = _tool_config(data, spec, problems)
    for key in data:
        if key not in KINDS and key != "tool":
            problems.warn(f"top-level key {key!r}", "ignored (venvstacks ignores it too); remove it")
    if not layers and not problems.errors:
        problems.error(
            "", "it defines no layers ([[runtimes]], [[frameworks]], [[applications]]); is it a venvstacks.toml?"
        )
    if problems.errors:
        raise SpecRefused(refusal(problems.errors))
    return Stack(spec, tuple(layers.values()), exclude_newer), problems.warnings


def refusal(errors: list[str]) -> str:
    if len(errors) == 1:
        return f"{errors[0]} (nothing was written)"
    return f"{len(errors)} problems, nothing was written:\n" + "\n".join(f"  - {e}" for e in errors)


def _tool_config(data: dict[str, Any], spec: Path, problems: Problems) -> str:
    """exclude-newer of [tool.uv] (or of venvstacks.uv.toml, which venvstacks reads only without [tool.uv])."""
    tool = data.get("tool", {})
    uv_file = spec.parent / "venvstacks.uv.toml"
    if isinstance(tool, dict) and "uv" in tool:
        if uv_file.exists():
            problems.warn(uv_file.name, "ignored, as venvstacks ignores it when the spec has [tool.uv]; delete it")
        return _uv_settings(tool["uv"], "[tool.uv]", problems)
    if not uv_file.exists():
        return ""
    try:
        settings = tomllib.loads(uv_file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        problems.error(uv_file.name, f"is not a valid TOML file ({error}); fix it")
        return ""
    return _uv_settings(settings, uv_file.name, problems)


def _uv_settings(settings: Any, source: str, problems: Problems) -> str:
    if not isinstance(settings, dict):
        problems.error(source, "must be a table of uv settings")
        return ""
    exclude_newer = ""
    for key, value in settings.items():
        if key == "exclude-newer":
            exclude_newer = _exclude_newer(value, source, problems)
        elif key in UV_INDEX_KEYS:
            index_key(source, key, "package index configuration", problems)
        elif key in UV_IGNORED_KEYS:
            problems.warn(source, f"key {key!r} is ignored: {UV_IGNORED_KEYS[key]}; remove it")
        else:
            problems.error(
                source,
                f"key {key!r} is not supported: the lock passes uv no settings but exclude-newer, and this one "
                "changes what is locked; remove it (pin versions in the layers' requirements instead)",
            )
    return exclude_newer


def _exclude_newer(value: Any, source: str, problems: Problems) -> str:
    try:
        datetime.fromisoformat(value)
    except (TypeError, ValueError):
        problems.error(
            source, f"key 'exclude-newer' = {value!r} is not a date or an RFC 3339 time (venvstacks needs one); fix it"
        )
        return ""
    return str(value)
