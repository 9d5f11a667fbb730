"""A layer's SBOM: CycloneDX 1.6 JSON built from its metadata, written by the pack verb next to the metadata.

Everything comes from the metadata (schemas/layer-metadata.schema.json): the layer is the BOM's subject; each package
it installs is a `library` component with its purl and its wheel's sha256; the CPython it runs on (the runtime
archive, its sha256 and origin) is a `platform` component; the layers below it are components it depends on. The
document is deterministic: its timestamp is the layer's `locked_at`, its serial number a name-based UUID of its
content, and it holds nothing of the machine that built it.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from packaging.utils import canonicalize_name

from stacktool.errors import UserError
from stacktool.metadata import lower_layers

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas" / "cyclonedx"
SCHEMA_ID = "http://cyclonedx.org/schema/bom-1.6.schema.json"
PROPERTY_PREFIX = "rules_venvstacks:"
# The component type of a layer, by kind; lower layers are known by name only (ENV_NAME_PREFIX in layer.bzl).
LAYER_TYPES = {"runtime": "platform", "framework": "framework", "application": "application", "test": "application"}
_PREFIX_KINDS = (("framework-", "framework"), ("app-", "application"), ("test-", "test"))


class SbomError(UserError):
    """An SBOM that does not match the CycloneDX schema (a bug in rules_venvstacks)."""


def sbom_path(metadata_path: Path) -> Path:
    """Where the SBOM of the layer whose metadata is `metadata_path` is published: `<name>.cdx.json` beside it."""
    return metadata_path.with_name(metadata_path.name.removesuffix(".json") + ".cdx.json")


def _quote(text: str) -> str:
    """Percent-encoded for a purl (as packageurl-python does it: `:` stays as it is)."""
    return quote(text, safe=":")


def pypi_purl(name: str, version: str, wheel: str) -> str:
    """The package URL of a wheel from PyPI: `pkg:pypi/<normalized name>@<version>?file_name=<wheel>`."""
    return f"pkg:pypi/{canonicalize_name(name)}@{_quote(version)}?file_name={_quote(wheel)}"


def _properties(**values: Any) -> list[dict[str, str]]:
    return [{"name": PROPERTY_PREFIX + k, "value": str(v)} for k, v in sorted(values.items()) if v is not None]


def _sha256(hexdigest: str) -> list[dict[str, str]]:
    return [{"alg": "SHA-256", "content": hexdigest}]


def _layer_ref(install_target: str) -> str:
    return "layer:" + install_target


def _lower_layer(install_target: str, runtime: str) -> dict[str, Any]:
    """A layer below: its name and version from its install target, its type from its name's prefix."""
    name, _, version = install_target.partition("@")
    kind = "runtime" if install_target == runtime else next((k for p, k in _PREFIX_KINDS if name.startswith(p)), "")
    component = {"type": LAYER_TYPES.get(kind, "framework"), "bom-ref": _layer_ref(install_target), "name": name}
    return component | ({"version": version} if version else {})


def _runtime_component(metadata: dict[str, Any]) -> dict[str, Any]:
    """The CPython the layer runs on: its runtime archive, by sha256 and origin."""
    source = metadata["runtime_archive"]
    version = metadata["python_implementation"].removeprefix("cpython@")
    qualifiers = {"checksum": "sha256:" + source["sha256"], "file_name": source["file"]}
    references = []
    if source["origin"].startswith(("https://", "http://")):
        qualifiers["download_url"] = source["origin"]
        references = [{"type": "distribution", "url": source["origin"], "hashes": _sha256(source["sha256"])}]
    purl = f"pkg:generic/cpython@{version}?" + "&".join(f"{k}={_quote(v)}" for k, v in qualifiers.items())
    component = {
        "type": "platform",
        "bom-ref": "runtime:" + source["sha256"],
        "name": "cpython",
        "version": version,
        "description": "python-build-standalone CPython (the runtime archive of " + metadata["runtime_layer"] + ")",
        "hashes": _sha256(source["sha256"]),
        "purl": purl,
        "properties": _properties(runtime_archive=source["file"], origin=source["origin"]),
    }
    return component | ({"externalReferences": references} if references else {})


def _package(package: dict[str, Any]) -> dict[str, Any]:
    purl = pypi_purl(package["name"], package["version"], package["wheel"])
    return {
        "type": "library",
        "bom-ref": purl,
        "name": package["name"],
        "version": package["version"],
        "purl": purl,
        "hashes": _sha256(package["sha256"]),
        "properties": _properties(wheel=package["wheel"]),
    }


def _subject(metadata: dict[str, Any]) -> dict[str, Any]:
    """The layer itself: the BOM's `metadata.component`, hashed by its published archive."""
    return {
        "type": LAYER_TYPES[metadata["kind"]],
        "bom-ref": _layer_ref(metadata["install_target"]),
        "name": metadata["layer_name"],
        "version": str(metadata["lock_version"]),
        "hashes": _sha256(metadata["archive_hashes"]["sha256"]),
        "properties": _properties(
            label=metadata["label"],
            kind=metadata["kind"],
            platform=metadata["target_platform"],
            install_target=metadata["install_target"],
            archive=metadata["archive_name"],
            archive_size=metadata["archive_size"],
            requirements_hash=metadata["requirements_hash"],
            lock_file=metadata["lock"]["file"],
            lock_sha256=metadata["lock"]["sha256"],
            launch_module=metadata["app_launch_module"],
        ),
    }


def build_sbom(metadata: dict[str, Any]) -> dict[str, Any]:
    """The CycloneDX 1.6 document of the layer described by `metadata` (a layer metadata dict)."""
    subject = _subject(metadata)
    runtime = _runtime_component(metadata)
    packages = sorted((_package(p) for p in metadata["packages"]), key=lambda c: (c["name"].lower(), c["bom-ref"]))
    lower = [_lower_layer(target, metadata["runtime_layer"]) for target in lower_layers(metadata)]
    runtime_layer = subject["bom-ref"] if metadata["kind"] == "runtime" else _layer_ref(metadata["runtime_layer"])
    direct = [c["bom-ref"] for c in packages] + [c["bom-ref"] for c in lower]
    dependencies = [{"ref": subject["bom-ref"], "dependsOn": direct}]
    if runtime_layer == subject["bom-ref"]:
        dependencies[0]["dependsOn"] = [*direct, runtime["bom-ref"]]
    else:
        dependencies.append({"ref": runtime_layer, "dependsOn": [runtime["bom-ref"]]})
    document: dict[str, Any] = {
        "$schema": SCHEMA_ID,
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "version": 1,
        "metadata": {
            "timestamp": metadata["locked_at"],
            "lifecycles": [{"phase": "build"}],
            "tools": {"components": [{"type": "application", "name": "rules_venvstacks", "description": "stacktool"}]},
            "component": subject,
        },
        "components": [*packages, runtime, *lower],
        "dependencies": dependencies,
    }
    digest = hashlib.sha256(_dumps(document).encode()).hexdigest()
    return {"serialNumber": uuid.uuid5(uuid.NAMESPACE_URL, "sha256:" + digest).urn} | document


def _dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=1, sort_keys=True) + "\n"


@cache
def _validator() -> Any:
    """A validator of the official schema, its `$ref`s to spdx.schema.json and jsf-0.82.schema.json resolved from
    the vendored copies (schemas/cyclonedx/README.md), never fetched."""
    import jsonschema
    from referencing import Registry, Resource

    schemas = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(SCHEMA_DIR.glob("*.schema.json"))]
    registry: Registry[Any] = Registry().with_resources((s["$id"], Resource.from_contents(s)) for s in schemas)
    root = next(s for s in schemas if s["$id"] == SCHEMA_ID)
    return jsonschema.Draft7Validator(root, registry=registry, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)


def schema_errors(document: dict[str, Any]) -> list[str]:
    """What makes `document` invalid against the CycloneDX 1.6 schema (empty when it is valid)."""
    errors = sorted(_validator().iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))
    return [f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in errors]


def write_sbom(metadata: dict[str, Any], path: Path) -> None:
    """Writes the SBOM of the layer `metadata` describes to `path`, validated against the schema first."""
    document = build_sbom(metadata)
    errors = schema_errors(document)
    if errors:
        raise SbomError(f"{path.name} does not match the CycloneDX 1.6 schema: {'; '.join(errors)}")
    path.write_text(_dumps(document), encoding="utf-8")
