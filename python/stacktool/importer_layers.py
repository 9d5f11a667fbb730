"""The importer's reading of one venvstacks layer table: each key to an attribute, or to one message.

The layer graph is checked as venvstacks checks it (known lower layers, defined before use, one runtime, C3 order,
platforms a subset of the lower layers'), so a spec venvstacks refuses is refused here too, before anything is written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement

from stacktool.importer_modules import ModuleRef, application_modules
from stacktool.platforms import PLATFORMS

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


@dataclass
class Problems:
    """What the spec needs: errors refuse the import, warnings are printed; each names the file, layer and key."""

    spec_name: str
    default_index: bool = False  # --default-index: index configuration is dropped with a warning, not refused
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def _text(self, where: str, text: str) -> str:
        return f"{self.spec_name}: {where}: {text}" if where else f"{self.spec_name}: {text}"

    def error(self, where: str, text: str) -> None:
        self.errors.append(self._text(where, text))

    def warn(self, where: str, text: str) -> None:
        self.warnings.append(self._text(where, text))


@dataclass(frozen=True)
class Layer:
    """One layer as the BUILD file declares it."""

    kind: str  # runtime, framework or application
    name: str
    attrs: dict[str, Any]  # python, requirements, platforms, versioned, linux_target, macosx_target, dynlib_exclude
    runtime: str | None = None  # the runtime it sits on directly (`runtime = ...`)
    frameworks: tuple[str, ...] = ()  # as declared (the rules order them, C3)
    launch_module: ModuleRef | None = None
    support_modules: tuple[ModuleRef, ...] = ()
    base_runtime: str = ""  # the runtime below it (itself for a runtime)
    order: tuple[str, ...] = ()  # its frameworks in C3 order
    platforms: tuple[str, ...] = ()  # what it is built for (inherited when it does not say)

    @property
    def disabled(self) -> bool:
        return self.attrs.get("platforms") == []

    @property
    def lower(self) -> tuple[str, ...]:
        return (*self.frameworks, self.runtime) if self.runtime else self.frameworks


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
        problems.error(where, f"unknown key {key!r} for a {kind} layer (venvstacks refuses it too); remove it")
    _index_keys(raw, where, problems)
    attrs = _attributes(kind, raw, where, problems)
    runtime, frameworks, base, order = _lower(kind, raw, where, layers, problems)
    platforms = _platforms(raw, where, [layers[n] for n in (*frameworks, *([runtime] if runtime else []))], problems)
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
        patterns = _strings(raw["dynlib_exclude"], where, "dynlib_exclude", problems)
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
    requirements = _strings(value, where, "requirements", problems)
    for text in requirements:
        try:
            Requirement(text)
        except InvalidRequirement as error:
            problems.error(where, f"requirement {text!r} is not a valid PEP 508 requirement ({error}); fix it")
    return requirements


def _strings(value: Any, where: str, key: str, problems: Problems) -> list[str]:
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    problems.error(where, f"key {key!r} must be a list of strings, not {value!r}")
    return []


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


def _lower(
    kind: str, raw: dict[str, Any], where: str, layers: dict[str, Layer], problems: Problems
) -> tuple[str | None, tuple[str, ...], str, tuple[str, ...]]:
    """(runtime, frameworks as declared, the base runtime, the frameworks in C3 order) of a layer."""
    if kind == "runtime":
        return None, (), "", ()
    runtime, frameworks = raw.get("runtime"), raw.get("frameworks")
    if runtime is not None and frameworks is not None:
        problems.error(where, "sets both 'runtime' and 'frameworks' (venvstacks refuses both too); keep one")
        return None, (), "", ()
    if runtime is not None:
        if _kind(layers, runtime) != "runtime":
            problems.error(where, f"key 'runtime' names unknown runtime {runtime!r}; name a [[runtimes]] layer")
            return None, (), "", ()
        return runtime, (), runtime, ()
    names = _strings(frameworks, where, "frameworks", problems) if frameworks is not None else []
    if not names:
        problems.error(where, "sits on nothing: set 'runtime' or 'frameworks' (venvstacks requires one); add it")
        return None, (), "", ()
    unknown = [n for n in names if _kind(layers, n) != "framework"]
    if unknown:
        problems.error(
            where,
            f"key 'frameworks' names unknown framework {unknown[0]!r}; name a [[frameworks]] layer defined above "
            "this one (venvstacks allows no forward references)",
        )
        return None, (), "", ()
    bases = {layers[n].base_runtime for n in names}
    if len(bases) > 1:
        detail = ", ".join(f"{n!r} on {layers[n].base_runtime!r}" for n in names)
        problems.error(where, f"its frameworks sit on different runtimes ({detail}); use frameworks of one runtime")
        return None, (), "", ()
    order = _c3(names, layers, where, problems)
    return None, tuple(names), bases.pop(), order


def _kind(layers: dict[str, Layer], name: Any) -> str:
    return layers[name].kind if isinstance(name, str) and name in layers else ""


def _c3(names: list[str], layers: dict[str, Layer], where: str, problems: Problems) -> tuple[str, ...]:
    """The frameworks below in venvstacks' order (C3, as Python's MRO), or () after an error naming the clash."""
    sequences = [[n, *layers[n].order] for n in names] + [list(names)]
    order: list[str] = []
    while sequences := [s for s in sequences if s]:
        head = next((s[0] for s in sequences if not any(s[0] in t[1:] for t in sequences)), None)
        if head is None:
            problems.error(
                where,
                f"its frameworks cannot be put in one order (C3, as venvstacks; remaining: {sequences}); reorder "
                "'frameworks' so the orders agree",
            )
            return ()
        order.append(head)
        sequences = [s[1:] if s[0] == head else s for s in sequences]
    return tuple(order)


def _platforms(raw: dict[str, Any], where: str, lower: list[Layer], problems: Problems) -> tuple[str, ...] | None:
    """The platforms the layer is built for; None when it is disabled (`platforms = []`, or nothing left to inherit)."""
    inherited = [p for p in sorted(PLATFORMS) if all(p in below.platforms for below in lower)]
    disabled_below = [f"{below.kind} {below.name!r}" for below in lower if below.disabled]
    if "platforms" not in raw:
        if lower and not inherited:
            why = (
                f"it sits on disabled {', '.join(disabled_below)}"
                if disabled_below
                else "its lower layers share no platform"
            )
            problems.warn(where, f"written with platforms = [] (disabled), as venvstacks disables it: {why}")
            return None
        return tuple(inherited)
    given = _strings(raw["platforms"], where, "platforms", problems)
    invalid = [p for p in given if p not in PLATFORMS]
    if invalid:
        problems.error(
            where, f"key 'platforms' has invalid target platform {invalid[0]!r} (expected one of {sorted(PLATFORMS)})"
        )
        return tuple(p for p in given if p in PLATFORMS) or None
    extra = sorted({p for p in given if p not in inherited})
    if lower and extra:
        hint = f" (it sits on disabled {', '.join(disabled_below)})" if disabled_below else ""
        problems.error(
            where, f"key 'platforms' has target platforms not supported by lower layers: {extra}{hint}; remove them"
        )
    return tuple(dict.fromkeys(given)) or None
