"""The layer specs Bazel hands to the lock verb: what each layer asks for, read from one JSON file."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from stacktool.errors import UserError
from stacktool.platforms import DeploymentTarget, Platform, PlatformError, platform


class SpecError(UserError):
    """A layer spec that cannot be locked; the message names the layer and the fix."""


@dataclass(frozen=True)
class LayerSpec:
    """One layer as declared in a BUILD file (rules/private/layer.bzl writes these fields)."""

    key: str  # "package:name" of the layer's Bazel target
    kind: str  # "runtime", "framework" or "application"
    env_name: str  # directory name when deployed: "cpython3_11", "framework-mlx", "app-mlx_app"
    python: str  # "3.11"
    requirements: tuple[str, ...]
    lower: tuple[str, ...]  # keys of every lower layer, nearest first, the runtime last
    platforms: tuple[str, ...]
    pylock: str  # the name of its PEP 751 lock file, chosen by the layer rule
    linux_target: str
    macosx_target: str
    inputs: dict[str, Any]  # the spec exactly as Bazel wrote it; the index records it to detect stale locks

    @property
    def label(self) -> str:
        return "//" + self.key

    def parsed_requirements(self) -> list[Requirement]:
        parsed = []
        for text in self.requirements:
            try:
                parsed.append(Requirement(text))
            except InvalidRequirement as error:
                raise SpecError(
                    f"{self.label}: requirement {text!r} is not a valid PEP 508 requirement ({error}); "
                    "fix it in the layer's `requirements`"
                ) from None
        return parsed

    def requirement_names(self) -> set[str]:
        return {canonicalize_name(r.name) for r in self.parsed_requirements()}

    def target(self) -> DeploymentTarget:
        try:
            return DeploymentTarget.parse(self.linux_target, self.macosx_target)
        except PlatformError as error:
            raise SpecError(f"{self.label}: {error}") from None

    def target_platforms(self) -> list[Platform]:
        try:
            return [platform(name) for name in self.platforms]
        except PlatformError as error:
            raise SpecError(f"{self.label}: {error}") from None


@dataclass(frozen=True)
class StackSpec:
    """Every layer one lock target covers, lower layers before the layers that use them."""

    lock_label: str
    layers: tuple[LayerSpec, ...]

    def layer(self, key: str) -> LayerSpec:
        return next(layer for layer in self.layers if layer.key == key)


def layer_from_json(data: dict[str, Any]) -> LayerSpec:
    return LayerSpec(
        key=data["key"],
        kind=data["kind"],
        env_name=data["env_name"],
        python=data["python"],
        requirements=tuple(data["requirements"]),
        lower=tuple(data["lower"]),
        platforms=tuple(data["platforms"]),
        pylock=data["pylock"],
        linux_target=data["linux_target"],
        macosx_target=data["macosx_target"],
        inputs=data,
    )


def load_stack(path: Path) -> StackSpec:
    """Reads the spec file and checks what Starlark cannot: unique deployed names, known lower layers."""
    data = json.loads(path.read_text(encoding="utf-8"))
    layers = tuple(layer_from_json(layer) for layer in data["layers"])
    seen: dict[str, str] = {}
    for layer in layers:
        for name in (layer.env_name, layer.pylock):
            if name in seen:
                raise SpecError(
                    f"{layer.label} and //{seen[name]} would both use the name {name!r}; rename one of them"
                )
            seen[name] = layer.key
        for lower in layer.lower:
            if lower not in {other.key for other in layers}:
                raise SpecError(f"{layer.label}: lower layer //{lower} is not part of {data['lock']}; add it there")
    return StackSpec(lock_label=data["lock"], layers=layers)
