"""Tests for stacktool.sbom: the CycloneDX 1.6 SBOM the pack verb writes next to each layer's metadata.

Layers are composed from real wheels over the fixture runtime and packed by the real pack verb; every SBOM is
validated against the official CycloneDX 1.6 JSON schema (vendored in python/stacktool/schemas/cyclonedx/) by a
validator built here, independently of the one stacktool.sbom uses.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import uuid
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from referencing import Registry, Resource
from stacktool.compose import compose
from stacktool.contract import Module, PackConfig, RuntimeRecord, read_json
from stacktool.digest import sha256_of
from stacktool.metadata import read_metadata
from stacktool.pack import pack_layer
from stacktool.sbom import SCHEMA_DIR, SbomError, build_sbom, pypi_purl, sbom_path, schema_errors, write_sbom

SIX_SHA256 = "8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254"
SIX_PURL = "pkg:pypi/six@1.16.0?file_name=six-1.16.0-py2.py3-none-any.whl"


def official_validator() -> jsonschema.Draft7Validator:
    """The official schema, its references to spdx.schema.json and jsf-0.82.schema.json served from the vendored
    files (never fetched); formats checked where jsonschema can."""
    schemas = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in SCHEMA_DIR.glob("*.schema.json")}
    assert sorted(schemas) == ["bom-1.6.schema.json", "jsf-0.82.schema.json", "spdx.schema.json"]
    registry: Registry[Any] = Registry().with_resources(
        (f"http://cyclonedx.org/schema/{name}", Resource.from_contents(s)) for name, s in schemas.items()
    )
    return jsonschema.Draft7Validator(
        schemas["bom-1.6.schema.json"], registry=registry, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
    )


def assert_valid(document: dict[str, Any]) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in official_validator().iter_errors(document)]
    assert errors == []


def publish(tree: Path, out: Path, config: PackConfig, pylock: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Packs `tree` into `out` with its SBOM, as the pack action does; returns (metadata, SBOM)."""
    out.mkdir(parents=True, exist_ok=True)
    name = config.label.rpartition(":")[2]
    metadata = out / f"{name}-linux_x86_64.json"
    archive, sbom = out / f"{name}-linux_x86_64.tar.zst", sbom_path(metadata)
    pack_layer(tree, archive, metadata, pylock, config, sbom=sbom)
    assert sbom.name == f"{name}-linux_x86_64.cdx.json"
    return read_metadata(metadata), json.loads(sbom.read_text(encoding="utf-8"))


@pytest.fixture
def pylock(tmp_path: Path) -> Path:
    path = tmp_path / "pylock.framework-sci.toml"
    path.write_text('lock-version = "1.0"\n', encoding="utf-8")
    return path


@pytest.fixture
def framework(kit, wheels, posix_trees, fixture_runtime, tmp_path) -> Path:
    """A composed framework layer with six 1.16.0 and wheel 0.45.1 over the fixture runtime."""
    six = kit.wheel(wheels["six-1.16.0"], posix_trees["six-1.16.0"])
    wheel = kit.wheel(wheels["wheel-0.45.1"], posix_trees["wheel-0.45.1"])
    tree = tmp_path / "framework-sci"
    tree.mkdir()
    compose(kit.compose_config("framework-sci", "framework", runtime=fixture_runtime, wheels=[wheel, six]), tree)
    return tree


def test_a_framework_sbom_is_valid_cyclonedx_with_purls_hashes_runtime_and_lower_layers(
    kit, framework, pylock, fixture_runtime, wheels, tmp_path
):
    metadata, sbom = publish(framework, tmp_path / "out", kit.pack_config(pylock, "framework-sci"), pylock)
    assert_valid(sbom)
    assert (sbom["bomFormat"], sbom["specVersion"], sbom["version"]) == ("CycloneDX", "1.6", 1)
    assert sbom["metadata"]["timestamp"] == metadata["locked_at"] == "2026-11-30T12:00:00Z"
    subject = sbom["metadata"]["component"]
    assert (subject["type"], subject["name"], subject["bom-ref"]) == (
        "framework",
        "framework-sci",
        "layer:framework-sci",
    )
    assert subject["hashes"] == [{"alg": "SHA-256", "content": metadata["archive_hashes"]["sha256"]}]
    properties = {p["name"]: p["value"] for p in subject["properties"]}
    assert properties["rules_venvstacks:label"] == "//stacks:framework-sci"
    assert properties["rules_venvstacks:platform"] == "linux_x86_64"
    by_ref = {c["bom-ref"]: c for c in sbom["components"]}
    six = by_ref[SIX_PURL]
    assert (six["type"], six["name"], six["version"], six["purl"]) == ("library", "six", "1.16.0", SIX_PURL)
    assert six["hashes"] == [{"alg": "SHA-256", "content": SIX_SHA256}]  # the real wheel's sha256
    wheel = by_ref["pkg:pypi/wheel@0.45.1?file_name=wheel-0.45.1-py3-none-any.whl"]
    assert wheel["hashes"] == [{"alg": "SHA-256", "content": sha256_of(wheels["wheel-0.45.1"])}]
    source = read_json(RuntimeRecord, fixture_runtime.record).source
    runtime = by_ref["runtime:" + source.sha256]
    assert (runtime["type"], runtime["name"], runtime["version"]) == ("platform", "cpython", "3.11.99")
    assert runtime["hashes"] == [{"alg": "SHA-256", "content": source.sha256}]
    assert runtime["purl"] == f"pkg:generic/cpython@3.11.99?checksum=sha256:{source.sha256}&file_name=" + (
        source.file.replace("+", "%2B")
    )
    assert "externalReferences" not in runtime  # a local archive has no URL
    assert by_ref["layer:cpython3_11"] == {"type": "platform", "bom-ref": "layer:cpython3_11", "name": "cpython3_11"}
    assert sbom["dependencies"] == [
        {"ref": "layer:framework-sci", "dependsOn": [SIX_PURL, wheel["bom-ref"], "layer:cpython3_11"]},
        {"ref": "layer:cpython3_11", "dependsOn": [runtime["bom-ref"]]},
    ]


def test_a_runtime_sbom_names_its_cpython_and_where_it_came_from(kit, fixture_runtime, tmp_path):
    pylock = tmp_path / "pylock.cpython3_11.toml"
    pylock.write_text("# runtime\n", encoding="utf-8")
    metadata, sbom = publish(fixture_runtime.tree, tmp_path / "out", kit.pack_config(pylock, "cpython3_11"), pylock)
    assert_valid(sbom)
    assert sbom["metadata"]["component"]["type"] == "platform"
    (runtime,) = sbom["components"]
    assert runtime["name"] == "cpython"
    assert sbom["dependencies"] == [{"ref": "layer:cpython3_11", "dependsOn": [runtime["bom-ref"]]}]
    # An archive downloaded from a URL is referenced as the distribution, by its URL and sha256.
    source = metadata["runtime_archive"]
    url = f"https://example.invalid/releases/{source['file']}"
    downloaded = copy.deepcopy(metadata)
    downloaded["runtime_archive"]["origin"] = url
    (runtime,) = build_sbom(downloaded)["components"]
    assert runtime["externalReferences"] == [
        {"type": "distribution", "url": url, "hashes": [{"alg": "SHA-256", "content": source["sha256"]}]}
    ]
    assert "download_url=https:%2F%2Fexample.invalid%2Freleases%2F" in runtime["purl"]
    assert_valid(build_sbom(downloaded))


def test_an_application_of_a_versioned_stack_depends_on_the_exact_lower_versions(
    kit, fixture_runtime, wheels, posix_trees, tmp_path
):
    launch = tmp_path / "hello_app.py"
    launch.write_text("print('hello')\n", encoding="utf-8")
    config = kit.compose_config(
        "app-hello", "application", runtime=fixture_runtime, lower=["framework-sci@2", "cpython3_11"],
        modules=[Module("hello_app.py", str(launch))], launch_module="hello_app", install_target="app-hello@3",
        wheels=[kit.wheel(wheels["six-1.17.0"], posix_trees["six-1.17.0"])],
    )  # fmt: skip
    tree = tmp_path / "app-hello"
    tree.mkdir()
    compose(config, tree)
    pylock = tmp_path / "pylock.app-hello.toml"
    pylock.write_text("# app\n", encoding="utf-8")
    pack = dataclasses.replace(kit.pack_config(pylock, "app-hello"), lock_version=3)
    _, sbom = publish(tree, tmp_path / "out", pack, pylock)
    assert_valid(sbom)
    subject = sbom["metadata"]["component"]
    assert (subject["type"], subject["bom-ref"], subject["version"]) == ("application", "layer:app-hello@3", "3")
    properties = {p["name"]: p["value"] for p in subject["properties"]}
    assert properties["rules_venvstacks:launch_module"] == "hello_app"
    by_ref = {c["bom-ref"]: c for c in sbom["components"]}
    assert by_ref["layer:framework-sci@2"] == {
        "type": "framework", "bom-ref": "layer:framework-sci@2", "name": "framework-sci", "version": "2"
    }  # fmt: skip
    assert sbom["dependencies"][0]["dependsOn"] == [
        "pkg:pypi/six@1.17.0?file_name=six-1.17.0-py2.py3-none-any.whl", "layer:framework-sci@2", "layer:cpython3_11"
    ]  # fmt: skip


def test_the_sbom_is_deterministic_and_its_serial_number_follows_its_content(kit, framework, pylock, tmp_path):
    config = kit.pack_config(pylock, "framework-sci")
    publish(framework, tmp_path / "a", config, pylock)
    publish(framework, tmp_path / "b", config, pylock)
    name = "framework-sci-linux_x86_64.cdx.json"
    first = (tmp_path / "a" / name).read_bytes()
    assert first == (tmp_path / "b" / name).read_bytes()
    for needle in (str(tmp_path), str(Path.home()), "/tmp"):  # no path of the machine that built it
        assert needle.encode() not in first
    serial = json.loads(first)["serialNumber"]
    assert re.fullmatch(r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", serial)
    assert uuid.UUID(serial.removeprefix("urn:uuid:")).version == 5  # name-based: from the content's hash
    relocked = dataclasses.replace(config, locked_at="2027-01-02T03:04:05Z")
    _, again = publish(framework, tmp_path / "c", relocked, pylock)
    assert again["metadata"]["timestamp"] == "2027-01-02T03:04:05Z"
    assert again["serialNumber"] != serial


def test_purls_are_normalized_and_percent_encoded():
    assert pypi_purl("Typing_Extensions", "4.0.0", "typing_extensions-4.0.0-py3-none-any.whl") == (
        "pkg:pypi/typing-extensions@4.0.0?file_name=typing_extensions-4.0.0-py3-none-any.whl"
    )
    assert pypi_purl("zope.interface", "1.0+local", "x.whl") == "pkg:pypi/zope-interface@1.0%2Blocal?file_name=x.whl"


def test_the_schema_validation_catches_what_is_invalid(kit, framework, pylock, tmp_path):
    """Both validators reject what the official schema rejects, including in the referenced SPDX schema."""
    metadata, sbom = publish(framework, tmp_path / "out", kit.pack_config(pylock, "framework-sci"), pylock)
    assert schema_errors(sbom) == []
    bad_license = copy.deepcopy(sbom)
    bad_license["components"][0]["licenses"] = [{"license": {"id": "NOT-AN-SPDX-ID"}}]
    bad_type = copy.deepcopy(sbom)
    bad_type["components"][0]["type"] = "wheel"
    bad_serial = copy.deepcopy(sbom) | {"serialNumber": "urn:uuid:not-a-uuid"}
    good_license = copy.deepcopy(sbom)
    good_license["components"][0]["licenses"] = [{"license": {"id": "MIT"}}]  # in the SPDX schema's list
    assert schema_errors(good_license) == []
    for document, where in ((bad_license, "components/0/licenses"), (bad_type, "components/0/type"),
                            (bad_serial, "serialNumber")):  # fmt: skip
        assert any(error.startswith(where) for error in schema_errors(document)), schema_errors(document)
        assert list(official_validator().iter_errors(document))
    metadata["kind"] = "framework"
    metadata["packages"][0]["sha256"] = "not-hex"  # what schema-valid metadata cannot hold, the SBOM cannot either
    with pytest.raises(SbomError, match=r"x\.cdx\.json does not match the CycloneDX 1\.6 schema: components/"):
        write_sbom(metadata, tmp_path / "x.cdx.json")
    assert not (tmp_path / "x.cdx.json").exists()


def test_the_vendored_schemas_are_those_the_readme_names():
    """README.md next to the schema files records where they come from and their sha256: they must not drift."""
    readme = (SCHEMA_DIR / "README.md").read_text(encoding="utf-8")
    listed = dict(re.findall(r"^\| `([^`]+\.schema\.json)` \| `([0-9a-f]{64})` \|", readme, re.MULTILINE))
    assert listed == {p.name: sha256_of(p) for p in SCHEMA_DIR.glob("*.schema.json")}
    schema = json.loads((SCHEMA_DIR / "bom-1.6.schema.json").read_text(encoding="utf-8"))
    assert schema["$id"] == "http://cyclonedx.org/schema/bom-1.6.schema.json"
    assert "cyclonedx_python_lib-11.12.0-py3-none-any.whl" in readme
