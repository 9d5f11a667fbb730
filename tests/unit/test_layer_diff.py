"""Tests for stacktool.layer_diff: what changed between two published versions of a stack or a layer.

Two versions of a small stack are composed from real wheels over the fixture runtime and packed by the real pack
verb. Old: the runtime, framework-sci (six 1.16.0), app-one and app-gone. New: the same runtime, framework-sci with
six 1.17.0 and wheel 0.45.1, app-one with an edited launch module, and app-new instead of app-gone.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from stacktool.cli import main
from stacktool.contract import ComposeConfig, Module
from stacktool.layer_diff import DiffError, diff, render_text

SITE = "lib/python3.11/site-packages"


@pytest.fixture(scope="module")
def versions(kit, wheels, posix_trees, fixture_runtime, tmp_path_factory) -> dict[str, dict[str, Path]]:
    """ "old" and "new": env_name -> composed tree; plus "dirs": "old"/"new" -> the directory published into."""
    work = tmp_path_factory.mktemp("diff")
    src = work / "src"
    for version, text in (("old", "print('hello')\n"), ("new", "print('hello, world')\n")):
        (src / version).mkdir(parents=True)
        (src / version / "hello_app.py").write_text(text, encoding="utf-8")
    six_old = kit.wheel(wheels["six-1.16.0"], posix_trees["six-1.16.0"])
    six_new = kit.wheel(wheels["six-1.17.0"], posix_trees["six-1.17.0"])
    wheel = kit.wheel(wheels["wheel-0.45.1"], posix_trees["wheel-0.45.1"])
    lower = ["framework-sci", "cpython3_11"]

    def app(name: str, version: str) -> ComposeConfig:
        module = Module("hello_app.py", str(src / version / "hello_app.py"))
        return kit.compose_config(name, "application", runtime=fixture_runtime, lower=lower, modules=[module],
                                  launch_module="hello_app")  # fmt: skip

    configs = {
        "old": [kit.compose_config("framework-sci", "framework", runtime=fixture_runtime, wheels=[six_old]),
                app("app-one", "old"), app("app-gone", "old")],
        "new": [kit.compose_config("framework-sci", "framework", runtime=fixture_runtime, wheels=[six_new, wheel]),
                app("app-one", "new"), app("app-new", "new")],
    }  # fmt: skip
    result: dict[str, dict[str, Path]] = {"dirs": {}}
    for version, layer_configs in configs.items():
        out = work / version
        result["dirs"][version] = out
        kit.pack_tree(fixture_runtime.tree, out, "cpython3_11")
        result[version] = {"cpython3_11": fixture_runtime.tree}
        for config in layer_configs:
            result[version][config.env_name] = tree = kit.compose_tree(config, work / f"{version}-trees")
            kit.pack_tree(tree, out, config.env_name)
    return result


def test_a_stack_diff_matches_layers_by_name_and_reports_packages_files_and_bytes(kit, versions):
    result = diff(versions["dirs"]["old"], versions["dirs"]["new"])
    layers = {layer["layer_name"]: layer for layer in result["layers"]}
    assert [(layer["layer_name"], layer["status"]) for layer in result["layers"]] == [
        ("cpython3_11", "unchanged"),
        ("framework-sci", "changed"),
        ("app-gone", "removed"),
        ("app-new", "added"),
        ("app-one", "changed"),
    ]  # lowest first, then by name
    assert result["summary"]["changed"] == 2 and result["summary"]["unchanged"] == 1

    sci = layers["framework-sci"]
    assert [(p["name"], p["version"]) for p in sci["packages"]["added"]] == [("wheel", "0.45.1")]
    assert sci["packages"]["removed"] == []
    (six,) = sci["packages"]["changed"]
    assert (six["name"], six["old"]["version"], six["new"]["version"]) == ("six", "1.16.0", "1.17.0")
    old, new = (
        kit.tree_files(versions["old"]["framework-sci"], links=True),
        kit.tree_files(versions["new"]["framework-sci"], links=True),
    )
    files = sci["files"]
    assert [f["path"] for f in files["added"]] == sorted(new.keys() - old.keys())
    assert [f["path"] for f in files["removed"]] == sorted(old.keys() - new.keys())
    assert [f["path"] for f in files["changed"]] == sorted(p for p in old.keys() & new.keys() if old[p] != new[p])
    assert f"{SITE}/six.py" in [f["path"] for f in files["changed"]]  # six 1.17.0's six.py differs
    assert f"{SITE}/wheel/__init__.py" in [f["path"] for f in files["added"]]
    assert f"{SITE}/six-1.16.0.dist-info/RECORD" in [f["path"] for f in files["removed"]]
    assert files["unchanged"] == len(old.keys() & new.keys()) - len(files["changed"]) > 0
    installed = sci["bytes"]["installed_size"]
    assert (installed["old"], installed["new"]) == (sum(s for s, _ in old.values()), sum(s for s, _ in new.values()))
    assert installed["delta"] == installed["new"] - installed["old"] > 0
    assert sci["bytes"]["archive_size"]["delta"] == sci["new"]["archive_size"] - sci["old"]["archive_size"]
    assert sci["metadata"] == {}  # the same lock fields (the tests' pack config): only what it installs changed

    one = layers["app-one"]
    assert [f["path"] for f in one["files"]["changed"]] == [f"{SITE}/hello_app.py", "share/venvstacks/layer.json"]
    assert one["files"]["added"] == one["files"]["removed"] == []
    assert "app_launch_module_hash" in one["metadata"]
    assert one["packages"] == {"added": [], "removed": [], "changed": []}

    gone, added = layers["app-gone"], layers["app-new"]
    assert gone["new"] is None and added["old"] is None
    assert gone["bytes"]["installed_size"]["delta"] == -gone["old"]["installed_size"] < 0
    assert len(added["files"]["added"]) == len(kit.tree_files(versions["new"]["app-new"], links=True))
    assert result["summary"]["delta"]["installed_size"] == sum(
        layer["bytes"]["installed_size"]["delta"] for layer in result["layers"]
    )


def test_the_text_is_for_people(versions):
    text = render_text(diff(versions["dirs"]["old"], versions["dirs"]["new"]))
    lines = text.splitlines()
    assert "cpython3_11 (linux_x86_64): unchanged" in lines
    assert "framework-sci (linux_x86_64): changed" in lines
    assert "  packages: 1 added, 0 removed, 1 changed" in lines
    assert "    + wheel 0.45.1 (wheel-0.45.1-py3-none-any.whl)" in lines
    assert "    ~ six 1.16.0 -> 1.17.0" in lines
    assert "app-gone (linux_x86_64): removed" in lines and "app-new (linux_x86_64): added" in lines
    assert any(line.startswith("  installed: ") and "(+" in line for line in lines)
    assert any(line.startswith("      ... and ") and "more added (--files lists them all)" in line for line in lines)
    assert lines[-1].startswith("layers: 2 changed, 1 added, 1 removed, 1 unchanged; archives ")
    every = render_text(diff(versions["dirs"]["old"], versions["dirs"]["new"]), all_files=True)
    assert f"      + {SITE}/wheel/__init__.py (" in every and "more added" not in every


def test_the_verb_prints_text_or_json(versions, capsys):
    old, new = (str(versions["dirs"][v]) for v in ("old", "new"))
    assert main(["diff", old, new, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(json.dumps(diff(Path(old), Path(new))))
    assert printed["diff_version"] == 1
    assert main(["diff", old, new]) == 0
    assert capsys.readouterr().out == render_text(diff(Path(old), Path(new)))


def test_two_metadata_files_are_compared_whatever_their_names_and_versions(kit, versions, tmp_path):
    """A versioned layer's new version deploys under another install target: the diff says so."""
    tree = versions["new"]["framework-sci"]
    second = kit.pack_tree(tree, tmp_path / "v2", "framework-sci", lock_version=2)
    first = versions["dirs"]["old"] / "framework-sci-linux_x86_64.json"
    result = diff(first, second)
    (layer,) = result["layers"]
    assert layer["metadata"]["lock_version"] == {"old": 1, "new": 2}
    assert layer["status"] == "changed" and layer["packages"]["changed"][0]["name"] == "six"
    same = diff(second, second)["layers"][0]
    assert same["status"] == "unchanged" and same["files"]["changed"] == same["files"]["added"] == []
    assert same["bytes"]["installed_size"]["old"] == same["bytes"]["installed_size"]["new"] > 0


def test_inputs_that_cannot_be_compared_are_named(kit, versions, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.json").write_text('{"not": "metadata"}', encoding="utf-8")
    with pytest.raises(DiffError, match=r"empty: holds no layer metadata"):
        diff(empty, versions["dirs"]["new"])
    with pytest.raises(DiffError, match=r"missing: no such file or directory"):
        diff(tmp_path / "missing", versions["dirs"]["new"])
    both = tmp_path / "both"  # two versions of one layer side by side: which one is meant?
    kit.pack_tree(versions["new"]["framework-sci"], both / "a", "framework-sci")
    kit.pack_tree(versions["old"]["framework-sci"], both / "b", "framework-sci")
    with pytest.raises(DiffError, match=r"two versions of framework-sci for linux_x86_64"):
        diff(both, versions["dirs"]["new"])
