"""The importer's model of a venvstacks stack and its layer graph, checked as venvstacks checks it: known lower
layers, defined before use, one runtime below each layer, the C3 order of frameworks, and platforms that only narrow
what the lower layers are built for (a layer left with none is disabled, as venvstacks disables it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stacktool.importer_modules import ModuleRef
from stacktool.platforms import PLATFORMS


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


def strings(value: Any, where: str, key: str, problems: Problems) -> list[str]:
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    problems.error(where, f"key {key!r} must be a list of strings, not {value!r}")
    return []


def lower_layers(
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
    names = strings(frameworks, where, "frameworks", problems) if frameworks is not None else []
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


def layer_platforms(raw: dict[str, Any], where: str, lower: list[Layer], problems: Problems) -> tuple[str, ...] | None:
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
    given = strings(raw["platforms"], where, "platforms", problems)
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
