"""Tests of tools/gen_rule_docs.py: docs/rules.md is current, and undocumented public API is reported."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "gen_rule_docs.py"


def load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_rule_docs", TOOL)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


gen = load_tool()


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_docs_are_current():
    expected = gen.generate(ROOT)
    actual = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8") if (ROOT / "docs" / "rules.md").is_file() else ""
    assert actual == expected, "docs/rules.md is stale: run `python3 tools/gen_rule_docs.py` and commit the result"


def test_current_sources_are_documented():
    reference = gen.collect(ROOT)
    assert gen.check(reference) == []
    assert [m.name for m in reference.macros] == ["runtime_layer", "framework_layer", "application_layer"]
    assert set(reference.rules) == {
        "application_layer_rule",
        "framework_layer_rule",
        "layer_test",
        "runtime_layer_rule",
        "stack_bundle",
        "stack_lock",
    }
    assert set(reference.module_extensions["venvstacks"].tag_classes) == {"lock_file"}
    assert {"LayerInfo", "LockedLayerInfo", "StackToolInfo", "TargetPlatformInfo"} <= set(reference.provider_types)
    assert "linux_x86_64" in reference.target_platforms


def test_rendering_covers_every_public_attribute():
    text = gen.generate(ROOT)
    for heading in ("## Macros", "## Rules", "## Module extension", "## Providers", "## Platforms"):
        assert heading in text
    reference = gen.collect(ROOT)
    for rule in reference.rules.values():
        for name in rule.attrs:
            assert (f"| `{name}` |" in text) != name.startswith("_"), name
    assert gen.REGENERATE in text


def test_undocumented_rule_attribute_is_reported(tmp_path):
    write(
        tmp_path,
        {
            "defs/providers.bzl": 'FooInfo = provider(doc = "Foo.", fields = {"x": "The x."})\n',
            "defs/thing.bzl": """
load("//defs:providers.bzl", "FooInfo")
load(":helpers.bzl", _helper = "helper")
load("@other_repo//:stuff.bzl", "STUFF")

_PRIVATE = {"_hidden": attr.label(default = "//x:y")}

thing = rule(
    implementation = lambda ctx: None,
    doc = "A thing.",
    attrs = {
        "documented": attr.string(doc = "Has a doc.", default = STUFF.get("x", "")),
        "srcs": attr.label_list(providers = [FooInfo]),
    } | _PRIVATE,
)
""",
            "defs/helpers.bzl": '"""Helpers."""\n\ndef helper():\n    return 1\n',
        },
    )
    problems = gen.check_file(tmp_path / "defs" / "thing.bzl", root=tmp_path)
    assert problems == ["//defs:thing.bzl: rule thing: attribute `srcs` has no doc"]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            'def my_macro(name, extra = 1):\n    """Does things.\n\n    Args:\n      name: the name.\n    """\n',
            "macro my_macro: argument `extra` is not documented",
        ),
        ("def my_macro(name):\n    pass\n", "macro my_macro has no docstring"),
        ('r = rule(implementation = None, attrs = {"a": attr.int(doc = "A.")})\n', "rule r has no doc"),
        ('P = provider(doc = "P.", fields = ["a"])\n', "provider P: field `a` has no doc"),
        ('P = provider(doc = "P.", fields = {"a": "A.", "b": ""})\n', "provider P: field `b` has no doc"),
        (
            't = tag_class(doc = "T.", attrs = {"path": attr.label()})\n'
            'ext = module_extension(implementation = None, doc = "E.", tag_classes = {"lock": t})\n',
            "module extension ext: tag class lock: attribute `path` has no doc",
        ),
        (
            "t = tag_class(attrs = {})\n"
            'ext = module_extension(implementation = None, doc = "E.", tag_classes = {"x": t})\n',
            "module extension ext: tag class x has no doc",
        ),
    ],
)
def test_other_undocumented_items_are_reported(tmp_path, source, expected):
    write(tmp_path, {"x.bzl": source})
    problems = gen.check_file(tmp_path / "x.bzl")
    assert len(problems) == 1
    assert expected in problems[0]


def test_generator_fails_on_an_undocumented_attribute(tmp_path, capsys):
    write(
        tmp_path,
        {
            "rules/defs.bzl": '''"""Defs."""

load("//rules/private:r.bzl", _r = "r")

r = _r

def m(name):
    """A macro.

    Args:
      name: its name.
    """
''',
            "rules/private/r.bzl": 'r = rule(implementation = None, doc = "R.", attrs = {"deps": attr.label_list()})\n',
            "rules/extensions.bzl": '"""Extensions."""\n',
            "rules/providers.bzl": '"""Providers."""\n',
            "platforms/platforms.bzl": 'TARGET_PLATFORMS = {"linux_x86_64": []}\n',
        },
    )
    assert gen.main(["--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "//rules/private:r.bzl: rule r: attribute `deps` has no doc" in err
    assert not (tmp_path / "docs" / "rules.md").exists()

    write(tmp_path, {"rules/private/r.bzl": 'r = rule(implementation = None, doc = "R.", attrs = {})\n'})
    assert gen.main(["--root", str(tmp_path)]) == 0
    assert gen.main(["--root", str(tmp_path), "--check"]) == 0
    assert "### m" in (tmp_path / "docs" / "rules.md").read_text(encoding="utf-8")


def test_parse_docstring():
    description, args = gen.parse_docstring(
        """Summary.

        More text.

        Args:
          name: the name,
            continued.
          *args: positional.
          **kwargs (dict): the rest.

        Returns:
          nothing.
        """
    )
    assert description == "Summary.\n\nMore text.\n\nReturns:\n  nothing."
    assert args == {"name": "the name, continued.", "args": "positional.", "kwargs": "the rest."}
