"""What the peers benchmark measures: the example stacks, their layers and wheels (from the lock index), and
`StackRun`, the context every peer's measurement of one stack shares (its scratch directory, runtime, report rows).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import ROOT, Report, Row, cached_file

PLATFORM = "linux_x86_64"


@dataclass(frozen=True)
class Stack:
    name: str
    example: Path
    apps: dict[str, str]  # application layer -> its launch module file in stacks/
    code_change: str  # the launch module edited for the app-only code change
    requirement_change: tuple[str, str]  # the BUILD.bazel edit adding a requirement to one app only
    bundle: str = ""  # the all-platforms target, if the stack has one
    ship_target: str = ""  # the target for bytes shipped vs the per-app peers
    cold_target: str = "<= 1.3x"  # the target for the cold build vs the floor (fixed costs weigh more on small stacks)


STACKS = (
    Stack(
        "mlx",
        ROOT / "examples" / "mlx",
        {"mlx_app": "report_mlx_version.py"},
        "report_mlx_version.py",
        ('requirements = ["mlx"],', 'requirements = ["mlx", "six==1.16.0"],'),
        bundle="//stacks:all_platforms",
        cold_target="<= 2x",
    ),
    Stack(
        "sklearn",
        ROOT / "examples" / "sklearn",
        {"classify": "classify_iris.py", "cluster": "cluster_blobs.py"},
        "cluster_blobs.py",
        ('requirements = ["scikit-learn"],', 'requirements = ["scikit-learn", "six==1.16.0"],'),
        ship_target="<= 0.6x",
        cold_target="<= 1.5x",
    ),
)


@dataclass(frozen=True)
class Wheel:
    filename: str
    name: str
    version: str
    sha256: str


@dataclass(frozen=True)
class Layer:
    name: str  # the target's name
    env_name: str
    kind: str
    lower: tuple[str, ...]  # target names, nearest first
    requirements: tuple[str, ...]
    wheels: tuple[Wheel, ...]


def read_layers(index_path: Path) -> list[Layer]:
    """The published layers of a lock index, lowest first (not the test layers of stack_pytest: never published)."""
    layers = []
    for key, entry in json.loads(index_path.read_text())["layers"].items():
        inputs = entry["inputs"]
        if inputs["kind"] == "test":
            continue
        wheels = tuple(
            Wheel(w["filename"], w["name"], w["version"], w["sha256"]) for w in entry["wheels"].get(PLATFORM, [])
        )
        lower = tuple(k.rpartition(":")[2] for k in inputs["lower"])
        layers.append(
            Layer(
                key.rpartition(":")[2], inputs["env_name"], inputs["kind"], lower, tuple(inputs["requirements"]), wheels
            )
        )
    return sorted(layers, key=lambda layer: (len(layer.lower), layer.name))


def app_wheels(layers: list[Layer], app: str) -> list[Wheel]:
    """What an app needs without layering: its own wheels and those of every layer below it."""
    by_name = {layer.name: layer for layer in layers}
    return [w for name in (app, *by_name[app].lower) for w in by_name[name].wheels]


def link_wheels(layers: list[Layer], dest: Path) -> Path:
    """A directory of the stack's wheels under their own file names (links into the repository cache)."""
    dest.mkdir(parents=True, exist_ok=True)
    for wheel in (w for layer in layers for w in layer.wheels):
        link = dest / wheel.filename
        if not link.exists():
            link.symlink_to(cached_file(wheel.sha256))
    return dest


@dataclass(frozen=True)
class Shipment:
    """How long a peer took to make a stack's environments, and the bytes it ships (0, 0: not measured)."""

    seconds: float
    shipped: int


@dataclass
class StackRun:
    """One stack measured every way: what the peers share, and the report their rows and raw details go to."""

    stack: Stack
    report: Report
    work: Path  # this stack's scratch directory
    runtime_archive: Path  # the local CPython 3.11, python-build-standalone layout
    runtimes: Path  # that runtime plus macOS/Windows layout fixtures, for VENVSTACKS_LOCAL_RUNTIMES
    raw: dict[str, Any] = field(default_factory=dict)  # details kept in the report's facts
    layers: list[Layer] = field(init=False)

    def __post_init__(self) -> None:
        self.layers = read_layers(self.stack.example / "stacks" / "venvstacks_lock.json")

    @property
    def targets(self) -> list[str]:
        """The Bazel targets of the stack's applications."""
        return [f"//stacks:{app}" for app in self.stack.apps]

    @property
    def wheels(self) -> Path:
        """The directory of the stack's wheels (filled by `link_wheels` once the repository cache has them)."""
        return self.work / "wheels"

    def module_launches(self, envs: Path) -> dict[str, list[str | Path]]:
        """Per app, the command running its launch module with `python -m` in `envs/app-<app>`."""
        return {app: [envs / f"app-{app}" / "bin" / "python", "-m", Path(m).stem] for app, m in self.stack.apps.items()}

    def row(self, name: str, *args: Any, **kwargs: Any) -> Row:
        """Adds a row named after the stack to the report."""
        return self.report.add(Row(f"{self.stack.name}: {name}", *args, **kwargs))
