"""`import-venvstacks`: a venvstacks project (its venvstacks.toml) as a Bazel package of rules_venvstacks targets.

    bazel run @rules_venvstacks//tools:import_venvstacks -- venvstacks.toml [--package stacks] [--default-index]

Writes the generated block of `<package>/BUILD.bazel` (importer_render), copies the launch and support modules into
the package (importer_modules) and adds the lines MODULE.bazel lacks to register the package's lock index. The spec
is read key by key (importer_spec, importer_layers): nothing is written when any key is refused, and importing an
unchanged spec again writes nothing.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from stacktool.errors import UserError
from stacktool.importer_modules import ModuleRef, plan_copies
from stacktool.importer_render import (
    LOCK,
    Target,
    layer_targets,
    merge_build,
    module_additions,
    names_outside,
    render_block,
    text_outside,
)
from stacktool.importer_spec import SpecRefused, Stack, read_spec, refusal

COMMAND = "bazel run @rules_venvstacks//tools:import_venvstacks --"
PACKAGE = re.compile(r"[A-Za-z0-9_.+=,@~-]+(/[A-Za-z0-9_.+=,@~-]+)*")
PBS_TABLE = Path(__file__).resolve().parents[2] / "rules" / "private" / "pbs_runtimes.json"
LOCAL_RUNTIMES = "VENVSTACKS_LOCAL_RUNTIMES"


@dataclass(frozen=True)
class Request:
    spec: Path  # relative paths are relative to where the importer runs (bazel run: where bazel was run)
    workspace: Path  # the Bazel workspace root
    package: str | None = None  # default: the spec's directory
    default_index: bool = False  # drop index configuration with a warning instead of refusing it


@dataclass
class Outcome:
    package: str
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)  # what was written or removed, relative to the workspace


def import_venvstacks(request: Request) -> Outcome:
    spec = request.spec.absolute().parent.resolve() / request.spec.name  # as the workspace: symlinks resolved
    workspace = request.workspace.resolve()
    package = _package(request.package, spec, workspace)
    stack, warnings = read_spec(spec, request.default_index)
    outcome = Outcome(package, warnings + runtime_warnings(stack))
    package_dir = workspace / package
    build_path = next((package_dir / n for n in ("BUILD.bazel", "BUILD") if (package_dir / n).is_file()), None)
    build_path = build_path or package_dir / "BUILD.bazel"
    shown = _relative(build_path, workspace)
    old_build = build_path.read_text(encoding="utf-8") if build_path.is_file() else ""
    outside = text_outside(old_build, shown)
    errors: list[str] = []
    plan = plan_copies(_modules(stack), package_dir, lambda where, text: errors.append(f"{spec.name}: {where}: {text}"))
    targets = _targets(stack, package, names_outside(outside), outside, shown, outcome, errors)
    if errors:
        raise SpecRefused(refusal(errors))
    block = render_block(targets, _command(spec, workspace, package, request.default_index))
    plan[build_path] = merge_build(old_build, shown, block).encode()
    if any(not layer.disabled for layer in stack.layers):  # a lock (generated or kept outside the block)
        _plan_module(workspace / "MODULE.bazel", package, plan, outcome)
    _apply(plan, workspace, outcome)
    return outcome


def _package(given: str | None, spec: Path, workspace: Path) -> str:
    if given is None:
        try:
            relative = spec.parent.relative_to(workspace)
        except ValueError:
            raise UserError(
                f"{spec} is outside the workspace {workspace}; give --package (the package to write)"
            ) from None
        return "" if relative == Path(".") else relative.as_posix()
    package = given.strip().removeprefix("//").strip("/")
    if package in ("", "."):
        return ""
    if not PACKAGE.fullmatch(package) or any(part in (".", "..") for part in package.split("/")):
        raise UserError(f"--package {given!r} is not a Bazel package path (e.g. 'stacks' or 'python/stacks')")
    return package


def _relative(path: Path, workspace: Path) -> str:
    try:
        return path.relative_to(workspace).as_posix()
    except ValueError:
        return str(path)


def _command(spec: Path, workspace: Path, package: str, default_index: bool) -> str:
    words = [COMMAND, _relative(spec, workspace), "--package", package or "//"]
    return " ".join(words + (["--default-index"] if default_index else []))


def _modules(stack: Stack) -> list[ModuleRef]:
    found: list[ModuleRef] = []
    for layer in stack.layers:
        found += [m for m in (layer.launch_module, *layer.support_modules) if m and m not in found]
    return found


def _targets(
    stack: Stack, package: str, defined: set[str], outside: str, shown: str, outcome: Outcome, errors: list[str]
) -> list[Target]:
    """The generated targets but those defined outside the block (kept as written); errors for clashing names."""
    targets = []
    for target in layer_targets(stack.layers, stack.exclude_newer):
        if target.name in defined:
            outcome.notes.append(f"//{package}:{target.name} is defined outside the generated block: kept as written")
        else:
            targets.append(target)
    if re.search(r"^\s*stack_lock\(", outside, re.M) and LOCK not in defined:
        errors.append(
            f"{shown} has a stack_lock outside the generated block (one per package): name it {LOCK!r} to keep "
            "it, or import into another --package"
        )
    made: dict[str, str] = {}
    for target in targets:
        extra = [target.name + "_test"] if target.rule != "filegroup" else []
        if target.attrs.get("platforms"):
            extra.append(target.name + "_platforms")
        for name in [target.name, *extra]:
            if name in made or (name in defined and name != target.name):
                origin = made.get(name, "a target outside the generated block")
                errors.append(
                    f"{stack.spec.name}: {target.rule} {target.name!r} would make target :{name}, as {origin} does; "
                    "rename the layer"
                )
                break
            made[name] = f"{target.rule} {target.name!r}"
    return targets


def _plan_module(path: Path, package: str, plan: dict[Path, bytes | None], outcome: Outcome) -> None:
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    lines = module_additions(text, package)
    if lines:
        plan[path] = ((text.rstrip("\n") + "\n\n" if text.strip() else "") + "\n".join(lines) + "\n").encode()
        outcome.notes += [f"MODULE.bazel: added {line}" for line in lines]


def _apply(plan: dict[Path, bytes | None], workspace: Path, outcome: Outcome) -> None:
    """Writes what differs from the files as they are (nothing, for an unchanged spec)."""
    for path, content in sorted(plan.items()):
        if content is None:
            path.unlink()
            outcome.changes.append(f"removed {_relative(path, workspace)}")
        elif not path.is_file() or path.read_bytes() != content:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
            outcome.changes.append(f"wrote {_relative(path, workspace)}")


def runtime_warnings(stack: Stack) -> list[str]:
    """Exact runtime versions that neither the runtime table nor a local archive provides (best effort)."""
    try:
        table = json.loads(PBS_TABLE.read_text(encoding="utf-8"))["pythons"]
    except (OSError, ValueError, KeyError):
        return []
    local_dir = Path(os.environ.get(LOCAL_RUNTIMES, "") or "/nonexistent")
    local = [p.name for p in local_dir.iterdir()] if local_dir.is_dir() else []
    warnings = []
    for layer in stack.layers:
        version = layer.attrs.get("python", "")
        minor = ".".join(version.split(".")[:2])
        known = table.get(minor, {}).get("version")
        if (
            version.count(".") == 2
            and version != known
            and not any(n.startswith((f"cpython-{version}+", f"cpython-{version}-")) for n in local)
        ):
            warnings.append(
                f"{stack.spec.name}: runtime {layer.name!r}: CPython {version} is not in the runtime table "
                f"(rules/private/pbs_runtimes.json has {known or 'no release'} for {minor}): building it needs a local "
                f"archive ({LOCAL_RUNTIMES}) or a runtime_archive; or use 'cpython@{known or minor}' in the spec"
            )
    return warnings


def report(outcome: Outcome) -> list[str]:
    """What the importer prints on stdout."""
    label = f"//{outcome.package}"
    lines = outcome.changes or [f"nothing changed: {label} is up to date with the spec"]
    return [
        *lines,
        *outcome.notes,
        f"next: bazel run {label}:{LOCK}, then bazel build {label}:all and bazel test {label}:all",
    ]
