"""Tests for stacktool.size_report: archive members and installed sizes, and the stack's size and sharing report.

A small stack is composed from real wheels over the fixture runtime and packed by the real pack verb: the runtime, a
framework with six, and two applications over it (one with the `wheel` package, one with its launch module only).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from stacktool.cli import main
from stacktool.contract import Module
from stacktool.size_report import ReportError, archive_members, human, installed_size, render_html, stack_report


@pytest.fixture(scope="module")
def stack(kit, wheels, posix_trees, fixture_runtime, tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """env_name -> (its composed tree, its published metadata file) of the four layers."""
    work = tmp_path_factory.mktemp("report-stack")
    out = work / "published"
    launch = work / "src" / "hello_app.py"
    launch.parent.mkdir()
    launch.write_text("print('hello')\n", encoding="utf-8")
    six = kit.wheel(wheels["six-1.16.0"], posix_trees["six-1.16.0"])
    wheel = kit.wheel(wheels["wheel-0.45.1"], posix_trees["wheel-0.45.1"])
    lower = ["framework-sci", "cpython3_11"]
    configs = [
        kit.compose_config("framework-sci", "framework", runtime=fixture_runtime, wheels=[six]),
        kit.compose_config("app-one", "application", runtime=fixture_runtime, lower=lower, wheels=[wheel],
                           modules=[Module("hello_app.py", str(launch))], launch_module="hello_app"),
        kit.compose_config("app-two", "application", runtime=fixture_runtime, lower=lower,
                           modules=[Module("hello_app.py", str(launch))], launch_module="hello_app"),
    ]  # fmt: skip
    layers = {"cpython3_11": (fixture_runtime.tree, kit.pack_tree(fixture_runtime.tree, out, "cpython3_11"))}
    for config in configs:
        tree = kit.compose_tree(config, work / "trees")
        layers[config.env_name] = (tree, kit.pack_tree(tree, out, config.env_name))
    return layers


@pytest.mark.parametrize("fmt", ["tar.zst", "tar.gz", "tar.xz", "zip"])
def test_archive_members_are_the_layers_files_in_every_format(kit, stack, tmp_path, fmt):
    tree, _ = stack["framework-sci"]
    metadata = kit.pack_tree(tree, tmp_path, "framework-sci", archive_format=fmt)
    members = archive_members(metadata.with_name(f"framework-sci-linux_x86_64.{fmt}"), digests=True)
    files = kit.tree_files(tree)
    assert {m.path: (m.size, m.digest) for m in members if m.kind == "file"} == files
    links = {m.path for m in members if m.kind == "symlink"}
    tree_links = {p.relative_to(tree).as_posix() for p in tree.rglob("*") if p.is_symlink()}
    assert links == tree_links and links  # bin/python3 -> python, ...
    assert "lib/python3.11/site-packages" in {m.path for m in members if m.kind == "dir"}
    assert installed_size(members) == sum(size for size, _ in files.values()) > 0
    assert all(m.digest == "" for m in archive_members(metadata.with_name(f"framework-sci-linux_x86_64.{fmt}")))


def test_the_report_counts_each_layer_once_for_the_stack_and_once_per_app_for_one_venv_each(kit, stack):
    paths = {name: metadata for name, (_, metadata) in stack.items()}
    apps = [[paths["cpython3_11"], paths["framework-sci"], paths[app]] for app in ("app-one", "app-two")]
    report = stack_report(apps)
    sizes = {name: sum(size for size, _ in kit.tree_files(tree).values()) for name, (tree, _) in stack.items()}
    layers = {layer["install_target"]: layer for layer in report["layers"]}
    assert list(layers) == ["cpython3_11", "framework-sci", "app-one", "app-two"]  # lowest first
    for name, layer in layers.items():
        assert layer["installed_size"] == sizes[name]
        assert layer["files"] == len(kit.tree_files(stack[name][0]))
        assert layer["archive_size"] == paths[name].with_suffix(".tar.zst").stat().st_size
    assert layers["framework-sci"]["apps"] == ["app-one", "app-two"]
    assert layers["app-one"]["apps"] == ["app-one"]
    assert (layers["framework-sci"]["packages"], layers["app-one"]["packages"], layers["app-two"]["packages"]) == (
        1, 1, 0
    )  # fmt: skip
    shared = sizes["cpython3_11"] + sizes["framework-sci"]
    one, two = report["apps"]
    assert one == {
        "name": "app-one",
        "layers": ["cpython3_11", "framework-sci", "app-one"],
        "installed_size": shared + sizes["app-one"],
        "archive_size": sum(layers[k]["archive_size"] for k in ("cpython3_11", "framework-sci", "app-one")),
        "shared_size": shared,
        "own_size": sizes["app-one"],
    }
    assert (two["installed_size"], two["own_size"]) == (shared + sizes["app-two"], sizes["app-two"])
    totals = report["totals"]
    assert totals["stack_installed_size"] == sum(sizes.values())
    assert totals["one_venv_per_app_installed_size"] == 2 * shared + sizes["app-one"] + sizes["app-two"]
    assert totals["saved_installed_size"] == shared


def test_the_html_page_lists_the_layers_with_an_svg_chart_and_nothing_of_the_machine(stack, tmp_path):
    paths = [metadata for _, metadata in stack.values()]
    report = stack_report([paths[:3], [*paths[:2], paths[3]]])
    html = render_html(report, "//stacks:report")
    assert html == render_html(stack_report([paths[:3], [*paths[:2], paths[3]]]), "//stacks:report")
    assert html.startswith("<!DOCTYPE html>") and html.count("<svg") == 1 and "<script" not in html
    assert "<h1>Stack report: //stacks:report</h1>" in html
    for name in stack:
        assert f"<td>{name}</td>" in html  # the layers' table
        assert f">{name}</text>" in html  # the chart's labels
    saved = human(report["totals"]["saved_installed_size"])
    assert f"sharing saves {saved}" in html
    assert str(Path(paths[0]).parent) not in html and str(Path.home()) not in html


def test_the_verb_writes_the_page_and_the_numbers(stack, tmp_path):
    paths = [str(metadata) for _, metadata in stack.values()]
    html, data = tmp_path / "report.html", tmp_path / "report.json"
    argv = ["stack-report", "--title", "//stacks:report", "--html", str(html), "--json", str(data)]
    assert main([*argv, "--app", *paths[:3], "--app", *paths[:2], paths[3]]) == 0
    report = json.loads(data.read_text(encoding="utf-8"))
    assert report == stack_report([[Path(p) for p in paths[:3]], [Path(p) for p in [*paths[:2], paths[3]]]])
    assert html.read_text(encoding="utf-8") == render_html(report, "//stacks:report")


def test_a_missing_archive_is_named(stack, tmp_path, capsys):
    _, metadata = stack["app-two"]
    moved = tmp_path / metadata.name
    moved.write_bytes(metadata.read_bytes())  # the metadata without its archive
    with pytest.raises(ReportError, match=r"app-two-linux_x86_64\.tar\.zst: no such file \(the archive should be next"):
        stack_report([[moved]])
    argv = ["stack-report", "--title", "t", "--html", str(tmp_path / "h"), "--json", str(tmp_path / "j")]
    assert main([*argv, "--app", str(moved)]) == 1
    assert "error: " in capsys.readouterr().err


def test_human_sizes():
    assert [human(n) for n in (0, 1023, 1024, 1536, 5 << 20, 3 << 30)] == [
        "0 B", "1023 B", "1.0 KiB", "1.5 KiB", "5.0 MiB", "3.00 GiB"
    ]  # fmt: skip
