"""Text the importer writes: the generated block of the BUILD file, merged with what is around it, and the lines
MODULE.bazel needs.

The block sits between a BEGIN and an END marker line; a re-import replaces only the block, so targets written
outside it stay. A target outside the block with the name of a generated one is left to the user: the block then
leaves it out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from stacktool.errors import UserError
from stacktool.importer_graph import Layer
from stacktool.importer_modules import ModuleRef

BEGIN = "# BEGIN venvstacks import"
END = "# END venvstacks import"
DEFS = "@rules_venvstacks//rules:defs.bzl"
EXTENSION = "@rules_venvstacks//rules:extensions.bzl"
LOCK = "lock"
RULES = {"runtime": "runtime_layer", "framework": "framework_layer", "application": "application_layer"}


class BuildFileError(UserError):
    """The BUILD file's generated block cannot be found or kept apart from the hand-written targets."""


@dataclass(frozen=True)
class Target:
    rule: str
    name: str
    attrs: dict[str, Any]


def starlark(value: Any, indent: str = "    ") -> str:
    """A Starlark literal of a string, bool or list of strings (one item per line when there are several)."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    if len(value) < 2:
        return "[" + "".join(starlark(item) for item in value) + "]"
    return "[\n" + "".join(f"{indent}    {starlark(item)},\n" for item in value) + indent + "]"


def render_target(target: Target) -> str:
    lines = [f"{target.rule}(", f"    name = {starlark(target.name)},"]
    if "srcs" in target.attrs:  # a filegroup of a package directory
        excluded = starlark(["**/__pycache__/**", "**/*.pyc"], indent="        ")
        lines += [
            "    srcs = glob(",
            f"        [{starlark(target.attrs['srcs'])}],",
            f"        exclude = {excluded},",
            "    ),",
        ]
    lines += [f"    {key} = {starlark(target.attrs[key])}," for key in sorted(target.attrs) if key != "srcs"]
    return "\n".join([*lines, ")"])


def _module_label(module: ModuleRef) -> str:
    return ":" + module.target_name if module.is_package else module.dest


def layer_targets(layers: tuple[Layer, ...], exclude_newer: str) -> list[Target]:
    """The targets of the block, in the spec's order: each layer (then the filegroups it needs), then the lock."""
    targets: list[Target] = []
    filegroups: set[str] = set()
    for layer in layers:
        attrs = dict(layer.attrs)
        if layer.runtime:
            attrs["runtime"] = ":" + layer.runtime
        if layer.frameworks:
            attrs["frameworks"] = [":" + name for name in layer.frameworks]
        modules = [layer.launch_module, *layer.support_modules] if layer.launch_module else list(layer.support_modules)
        if layer.launch_module:
            attrs["launch_module"] = _module_label(layer.launch_module)
        if layer.support_modules:
            attrs["support_modules"] = [_module_label(m) for m in layer.support_modules]
        targets.append(Target(RULES[layer.kind], layer.name, attrs))
        for module in modules:
            if module.is_package and module.target_name not in filegroups:
                filegroups.add(module.target_name)
                targets.append(Target("filegroup", module.target_name, {"srcs": module.dest + "/**"}))
    below = {name for layer in layers if not layer.disabled for name in layer.lower}
    top = [":" + layer.name for layer in layers if not layer.disabled and layer.name not in below]
    if top:
        lock_attrs: dict[str, Any] = {"layers": top} | ({"exclude_newer": exclude_newer} if exclude_newer else {})
        targets.append(Target("stack_lock", LOCK, lock_attrs))
    return targets


def render_block(targets: list[Target], command: str) -> str:
    """The generated block: markers, the load() of the rules it uses, the targets."""
    rules = sorted({t.rule for t in targets if t.rule != "filegroup"})
    header = [
        f"{BEGIN}: generated from a venvstacks spec by",
        f"#   {command}",
        "# Running it again replaces this block; targets outside it stay (move one out to keep it as you write it).",
    ]
    parts = ["\n".join(header)]
    if rules:
        parts.append("load(" + ", ".join(starlark(s) for s in [DEFS, *rules]) + ")")
    parts += [render_target(t) for t in targets]
    return "\n\n".join(parts) + "\n\n" + END + "\n"


def split_build(text: str, path: str) -> tuple[str, str] | None:
    """(what is before the block, what is after it) of an existing BUILD file; None when it has no block."""
    lines = text.splitlines(keepends=True)
    begins = [i for i, line in enumerate(lines) if line.startswith(BEGIN)]
    ends = [i for i, line in enumerate(lines) if line.startswith(END)]
    if not begins and not ends:
        return None
    if len(begins) != 1 or len(ends) != 1 or ends[0] < begins[0]:
        raise BuildFileError(
            f"{path}: the generated block's markers are damaged ({len(begins)} '{BEGIN}' and {len(ends)} '{END}' "
            "lines); restore them (one of each, BEGIN first) or delete the block, then import again"
        )
    return "".join(lines[: begins[0]]), "".join(lines[ends[0] + 1 :])


def names_outside(text: str) -> set[str]:
    """Target names defined outside the block (by `name = "..."`)."""
    return set(re.findall(r'\bname\s*=\s*"([^"]+)"', text))


def merge_build(text: str, path: str, block: str) -> str:
    """The BUILD file with the block replaced, or appended after the hand-written targets of a file without one."""
    parts = split_build(text, path)
    if parts is None:
        return (text.rstrip("\n") + "\n\n" if text.strip() else "") + block
    return parts[0] + block + parts[1]


def text_outside(text: str, path: str) -> str:
    parts = split_build(text, path)
    return text if parts is None else parts[0] + parts[1]


def module_additions(text: str, package: str) -> list[str]:
    """The lines MODULE.bazel lacks to register the package's lock index (the dependency, the extension, lock_file)."""
    own = re.search(r'module\(\s*name\s*=\s*"rules_venvstacks"', text) is not None
    extension = "//rules:extensions.bzl" if own else EXTENSION
    lines = []
    if not own and not re.search(r'bazel_dep\(\s*name\s*=\s*"rules_venvstacks"', text):
        lines.append('bazel_dep(name = "rules_venvstacks")')
    found = re.search(rf'^(\w+)\s*=\s*use_extension\(\s*"{re.escape(extension)}"\s*,\s*"venvstacks"', text, re.M)
    variable = found.group(1) if found else "venvstacks"
    if not found:
        lines.append(f'{variable} = use_extension("{extension}", "venvstacks")')
    index = f"//{package}:venvstacks_lock.json"
    if not re.search(rf'\.lock_file\(\s*path\s*=\s*"(@@?)?{re.escape(index)}"', text):
        lines.append(f'{variable}.lock_file(path = "{index}")')
    return lines
