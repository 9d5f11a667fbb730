"""The importer's reading of one venvstacks layer table: each key to an attribute, or to one message naming the key,
the layer and what to do (the layer graph: importer_graph). Legacy keys are handled as venvstacks handles them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement

from stacktool.importer_graph import Layer, Problems, layer_platforms, lower_layers, strings
from stacktool.importer_modules import application_modules

ISSUE_11 = "is not supported yet (rules_venvstacks issue #11)"
COMMON_KEYS = {"name", "requirements", "versioned", "platforms", "linux_target", "macosx_target", "dynlib_exclude"}
INDEX_KEYS = {"package_indexes", "priority_indexes", "index_overrides"}
KIND_KEYS = {
    "runtime": {"python_implementation"},
    "framework": {"runtime", "frameworks"},
    "application": {"runtime", "frameworks", "launch_module", "support_modules"},
}
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]*")
PYTHON = re.compile(r"3\.\d+(\.\d+)?")


def index_key(where: str, key: str, what: str, problems: Problems) -> None:
    """A key of rules_venvstacks issue #11: refused, or dropped with a warning under --default-index."""
    if problems.default_index:
        problems.warn(
            where,
            f"key {key!r} ({what}) {ISSUE_11}: dropped (--default-index), the layers lock against the default index",
        )
    else:
        problems.error(
            where,
            f"key {key!r} ({what}) {ISSUE_11}; remove it, or re-run the importer with --default-index "
            "to lock against the default index (PyPI)",
        )


def convert_layer(
    kind: str, table: str, number: int, raw: Any, layers: dict[str, Layer], problems: Problems, spec_dir: Path
) -> Layer | None:
    """The layer of one [[runtimes]]/[[frameworks]]/[[applications]] entry, or None when it has no usable name."""
    name = raw.get("name") if isinstance(raw, dict) else None
    if not isinstance(name, str) or not name:
        problems.error(f"[[{table}]] entry {number}", "has no 'name' (venvstacks requires one); add it")
        return None
    where = f"{kind} {name!r}"
    if not NAME.fullmatch(name):
        problems.error(where, "this name cannot be a Bazel target name; rename it (letters, digits and . _ - @ +)")
        return None
    if name in layers:
        other = layers[name].kind
        clash = "is defined twice" if other == kind else f"has the name of {other} {name!r}"
        problems.error(where, f"{clash}: both would be the Bazel target :{name}; rename one of them")
        return None
    if kind == "runtime" and name.startswith(("framework-", "app-")):
        problems.error(
            where, f"starts with reserved prefix {name.split('-')[0]!r} (venvstacks refuses it too); rename it"
        )
    raw = _legacy(kind, dict(raw), where, problems)
    for key in sorted(set(raw) - COMMON_KEYS - INDEX_KEYS - KIND_KEYS[kind]):
        problems.error(where, f"unknown key {key!r} for {kind} layers (venvstacks refuses it too); remove it")
    _index_keys(raw, where, problems)
    attrs = _attributes(kind, raw, where, problems)
    runtime, frameworks, base, order = lower_layers(kind, raw, where, layers, problems)
    platforms = layer_platforms(
        raw, where, [layers[n] for n in (*frameworks, *([runtime] if runtime else []))], problems
    )
    if platforms is None:
        attrs["platforms"] = []
    elif "platforms" in raw:
        attrs["platforms"] = list(platforms)
    launch, support = application_modules(raw, where, spec_dir, problems.error) if kind == "application" else (None, ())
    return Layer(kind, name, attrs, runtime, frameworks, launch, support, base or name, order, tuple(platforms or ()))


def _legacy(kind: str, raw: dict[str, Any], where: str, problems: Problems) -> dict[str, Any]:
    """venvstacks' legacy keys, handled as venvstacks handles them (each with the warning it gives)."""
    if kind == "runtime" and "fully_versioned_name" in raw:
        value = raw.pop("fully_versioned_name")
        if "python_implementation" in raw:
            problems.error(
                where,
                "sets both 'python_implementation' and the obsolete 'fully_versioned_name' (venvstacks refuses "
                "both too); remove 'fully_versioned_name'",
            )
        else:
            raw["python_implementation"] = value
            problems.warn(
                where,
                "legacy key 'fully_versioned_name' converted to 'python_implementation' (venvstacks warns the same); "
                "rename it in the spec",
            )
    if "build_requirements" in raw:
        raw.pop("build_requirements")
        problems.warn(
            where,
            "legacy key 'build_requirements' dropped, as venvstacks drops it (layers install wheels only); remove it",
        )
    return raw


def _index_keys(raw: dict[str, Any], where: str, problems: Problems) -> None:
    """package_indexes and priority_indexes are refused (issue #11); index_overrides only accepts their mismatches."""
    if raw.get("package_indexes"):
        index_key(where, "package_indexes", "the index of each package", problems)
    if raw.get("priority_indexes"):
        index_key(where, "priority_indexes", "indexes to try first", problems)
    if raw.get("index_overrides"):
        problems.warn(
            where,
            f"key 'index_overrides' is ignored: it only accepts mismatched package_indexes, which {ISSUE_11[3:]}; "
            "remove it",
        )


def _attributes(kind: str, raw: dict[str, Any], where: str, problems: Problems) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    if kind == "runtime":
        attrs["python"] = _python(raw.get("python_implementation"), where, problems)
    attrs["requirements"] = _requirements(raw.get("requirements"), where, problems)
    versioned = raw.get("versioned", False)
    if not isinstance(versioned, bool):
        problems.error(where, f"key 'versioned' must be true or false, not {versioned!r}")
    elif versioned:
        attrs["versioned"] = True
    if "linux_target" in raw:
        linux = _linux_target(raw["linux_target"], where, problems)
        if linux:
            attrs["linux_target"] = linux
    if "macosx_target" in raw:
        macosx = raw["macosx_target"]
        if isinstance(macosx, str) and re.fullmatch(r"\d+(\.\d+)?", macosx):
            attrs["macosx_target"] = macosx
        else:
            problems.error(where, f"key 'macosx_target' = {macosx!r} is not a macOS version 'X' or 'X.Y'; fix it")
    if "dynlib_exclude" in raw:
        patterns = strings(raw["dynlib_exclude"], where, "dynlib_exclude", problems)
        attrs["dynlib_exclude"] = dynlib_patterns(patterns)
    return attrs


def _python(value: Any, where: str, problems: Problems) -> str:
    """`python` of a runtime: `cpython@3.Y.Z` -> `3.Y.Z` (CPython only)."""
    if not isinstance(value, str):
        problems.error(
            where, "key 'python_implementation' is missing (venvstacks requires it); add e.g. 'cpython@3.11.13'"
        )
        return ""
    implementation, _, version = value.rpartition("@")
    if implementation == "pypy":
        problems.error(
            where,
            f"python_implementation {value!r}: PyPy runtimes are not supported (rules_venvstacks builds "
            "python-build-standalone CPython only); use a 'cpython@3.Y.Z' runtime",
        )
    elif implementation != "cpython" or version.endswith("-32") or not PYTHON.fullmatch(version):
        problems.error(
            where,
            f"python_implementation {value!r} is not a 64-bit CPython 'cpython@3.Y.Z' (e.g. 'cpython@3.11.13'); fix it",
        )
    return version


def _requirements(value: Any, where: str, problems: Problems) -> list[str]:
    if value is None:
        problems.error(
            where, "key 'requirements' is missing (venvstacks requires it); add it (requirements = [] for none)"
        )
        return []
    requirements = strings(value, where, "requirements", problems)
    for text in requirements:
        try:
            Requirement(text)
        except InvalidRequirement as error:
            problems.error(where, f"requirement {text!r} is not a valid PEP 508 requirement ({error}); fix it")
    return requirements


def _linux_target(value: Any, where: str, problems: Problems) -> str | None:
    """`glibc@X.Y` as written; `glibc` alone is the default (glibc@2.28 in venvstacks 0.8 and here): None."""
    if value == "glibc":
        return None
    if isinstance(value, str) and re.fullmatch(r"glibc@\d+\.\d+", value):
        return value
    if isinstance(value, str) and value.partition("@")[0] != "glibc":
        problems.error(
            where,
            f"key 'linux_target' = {value!r}: only glibc targets are supported (as in venvstacks); use 'glibc@X.Y'",
        )
    else:
        problems.error(where, f"key 'linux_target' = {value!r} is not of the form 'glibc@X.Y'; fix it")
    return None


def dynlib_patterns(patterns: list[str]) -> list[str]:
    """venvstacks matches a pattern against the end of a library's path (glob, `/` + pattern); the rules match the
    whole path below site-packages (fnmatch, `*` crosses `/`): `P` becomes `P` and `*/P`, unless it starts with `*`."""
    converted: list[str] = []
    for pattern in patterns:
        pattern = pattern.removeprefix("**/")
        for each in [pattern] if pattern.startswith("*") else [pattern, "*/" + pattern]:
            if each not in converted:
                converted.append(each)
    return converted
