"""Tests of docs/render_rule_docs.py on hand-written ModuleInfo textprotos (as starlark_doc_extract writes them).

That docs/rules.md is current is checked by Bazel: `bazel test //docs:rules_md_test` (part of `bazel test //...`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import render_rule_docs

ROOT = Path(__file__).resolve().parents[2]


# Shaped like Bazel 7.7.1's output for a defs.bzl (render_main_repo_name = True): a macro, an executable rule loaded
# from a private file, and a test rule. "\303\203\302\274" is how Bazel 7 writes a `ü` of a .bzl file.
DEFS = r"""
rule_info {
  rule_name: "thing"
  doc_string: "Makes a `<name>` thing | with a pipe."
  attribute {
    name: "name"
    doc_string: "A unique name for this target."
    type: NAME
    mandatory: true
  }
  attribute {
    name: "srcs"
    doc_string: "The sources."
    type: LABEL_LIST
    provider_name_group {
      provider_name: "FooInfo"
      origin_key {
        name: "FooInfo"
        file: "@my_rules//rules:providers.bzl"
      }
    }
    provider_name_group {
      provider_name: "BarInfo"
      provider_name: "BazInfo"
    }
    default_value: "[]"
  }
  attribute {
    name: "format"
    doc_string: "The format."
    type: STRING
    default_value: "\"tar.zst\""
  }
  attribute {
    name: "flag"
    doc_string: "A flag."
    type: BOOLEAN
    mandatory: true
  }
  origin_key {
    name: "thing"
    file: "@my_rules//rules/private:thing.bzl"
  }
  executable: true
}
rule_info {
  rule_name: "check_test"
  doc_string: "Checks with \303\203\302\274."
  attribute {
    name: "data"
    doc_string: "Data."
    type: LABEL_STRING_DICT
    default_value: "{}"
  }
  origin_key {
    name: "check_test"
    file: "@my_rules//rules:defs.bzl"
  }
  test: true
  executable: true
}
func_info {
  function_name: "my_macro"
  parameter {
    name: "name"
    doc_string: "target name."
    mandatory: true
  }
  parameter {
    name: "extra"
    doc_string: "extra args for\nthe `<name>_test`."
    default_value: "[]"
  }
  parameter {
    name: "kwargs"
    doc_string: "passed on."
  }
  doc_string: "A macro.\n\nMore text.\n"
  return {
    doc_string: "nothing."
  }
  origin_key {
    name: "my_macro"
    file: "@my_rules//rules:defs.bzl"
  }
}
module_docstring: "Public API: `<x>` things.\n\n```starlark\nthing(name = \"<x>\")\n```"
file: "@my_rules//rules:defs.bzl"
"""

EXTENSIONS = r"""
module_docstring: "Module extension."
file: "@my_rules//rules:extensions.bzl"
module_extension_info {
  extension_name: "ext"
  doc_string: "Declares repositories."
  tag_class {
    tag_name: "lock_file"
    doc_string: "A lock file."
    attribute {
      name: "path"
      doc_string: "Its path."
      type: LABEL
      mandatory: true
    }
  }
  tag_class {
    tag_name: "extra"
    doc_string: "More."
  }
  origin_key {
    file: "@my_rules//rules/private:extension.bzl"
  }
}
"""

PROVIDERS = r"""
provider_info {
  provider_name: "FooInfo"
  doc_string: "Foo."
  field_info {
    name: "zeta"
    doc_string: "Last."
  }
  field_info {
    name: "alpha"
    doc_string: "First."
  }
  origin_key {
    name: "FooInfo"
    file: "@my_rules//rules:providers.bzl"
  }
}
module_docstring: "Providers."
file: "@my_rules//rules:providers.bzl"
"""

PLATFORMS = r"""
module_docstring: "Target platforms."
file: "@my_rules//platforms:platforms.bzl"
"""
TARGET_PLATFORMS = {  # as //platforms:table writes it
    "win_amd64": {"name": "win_amd64", "os": "windows", "cpu": "x86_64", "constraints": ["@platforms//os:windows"]},
    "linux_x86_64": {
        "name": "linux_x86_64",
        "os": "linux",
        "cpu": "x86_64",
        "constraints": ["@platforms//os:linux", "@platforms//cpu:x86_64"],
    },
}


def render(*modules: str) -> str:
    parsed = [render_rule_docs.parse(text) for text in modules]
    return render_rule_docs.render(parsed, render_rule_docs.parse(PLATFORMS), TARGET_PLATFORMS)


def problems(text: str) -> list[str]:
    return render_rule_docs.problems(render_rule_docs.parse(text))


def test_parse_textproto():
    message = render_rule_docs.parse(
        '# comment\nfile: "a\\"b\\\\c\\n\\303\\274"\nflag: true\nkind: STRING\n'
        "sub {\n  x: 1\n  sub {\n  }\n}\nsub: {\n}\n"
    )
    assert message.text("file") == 'a"b\\c\nü'
    assert message.flag("flag") and not message.flag("kind") and message.text("kind") == "STRING"
    assert [s.text("x") for s in message.all("sub")] == ["1", ""]
    assert message.one("sub").one("sub").fields == {}
    assert message.text("absent") == "" and message.one("absent").fields == {}


def test_parse_mends_bazel7_latin1_text():
    assert render_rule_docs.parse(r'doc: "path with \303\203\302\274"').text("doc") == "path with ü"
    # Text that is not double-encoded stays as it is.
    assert render_rule_docs.parse(r'doc: "\303\274 \342\202\254"').text("doc") == "ü €"
    assert render_rule_docs.parse('doc: "raw ü"').text("doc") == "raw ü"


@pytest.mark.parametrize("text", ["a {\n", "}\n", "a: {\nb\n}\n", "field:\n", "x y z\n"])
def test_parse_rejects_what_it_does_not_understand(text):
    with pytest.raises(ValueError, match="textproto"):
        render_rule_docs.parse(text)


def test_documented_modules_have_no_problems():
    assert problems(DEFS) == problems(EXTENSIONS) == problems(PROVIDERS) == []


def test_undocumented_rule_attribute_is_reported():
    text = DEFS.replace('doc_string: "The sources."\n', "")
    text = text.replace('name: "format"', 'name: "_private"')
    text = text.replace('doc_string: "The format."\n', "")
    # The defining file (origin_key) is named, `name` and private attributes are not checked.
    assert problems(text) == ["@my_rules//rules/private:thing.bzl: rule thing: attribute `srcs` has no doc"]


@pytest.mark.parametrize(
    ("module", "old", "new", "expected"),
    [
        (DEFS, '"A macro.\\n\\nMore text.\\n"', '""', "@my_rules//rules:defs.bzl: macro my_macro has no doc"),
        (DEFS, '"passed on."', '""', "@my_rules//rules:defs.bzl: macro my_macro: argument `kwargs` has no doc"),
        (
            DEFS,
            '"Makes a `<name>` thing | with a pipe."',
            '" "',
            "@my_rules//rules/private:thing.bzl: rule thing has no doc",
        ),
        (PROVIDERS, 'doc_string: "Foo."\n', "", "@my_rules//rules:providers.bzl: provider FooInfo has no doc"),
        (
            PROVIDERS,
            'doc_string: "Last."\n',
            "",
            "@my_rules//rules:providers.bzl: provider FooInfo: field `zeta` has no doc",
        ),
        (
            EXTENSIONS,
            'doc_string: "Declares repositories."\n',
            "",
            "@my_rules//rules/private:extension.bzl: module extension ext has no doc",
        ),
        (
            EXTENSIONS,
            'doc_string: "More."\n',
            "",
            "@my_rules//rules/private:extension.bzl: module extension ext: tag class extra has no doc",
        ),
        (
            EXTENSIONS,
            'doc_string: "Its path."\n',
            "",
            "@my_rules//rules/private:extension.bzl: module extension ext: tag class lock_file: attribute `path`",
        ),
        (
            PROVIDERS,
            'module_docstring: "Providers."',
            'repository_rule_info {\n  rule_name: "repo"\n  doc_string: "A repo."\n}',
            "@my_rules//rules:providers.bzl: repository rule repo is not rendered",
        ),
    ],
)
def test_each_undocumented_item_is_reported(module, old, new, expected):
    assert old in module
    found = problems(module.replace(old, new))
    assert len(found) == 1
    assert found[0].startswith(expected)


def test_render_fails_naming_every_problem():
    text = DEFS.replace('doc_string: "The sources."\n', "").replace('doc_string: "Data."\n', "")
    with pytest.raises(render_rule_docs.RenderError) as error:
        render(text, PROVIDERS)
    assert error.value.args == (
        "@my_rules//rules/private:thing.bzl: rule thing: attribute `srcs` has no doc",
        "@my_rules//rules:defs.bzl: rule check_test: attribute `data` has no doc",
    )


def section(text: str, heading: str) -> str:
    """The text from `heading` to the next heading of its level or above."""
    level = heading.split(" ")[0]
    start = text.index(heading + "\n")
    end = re.search(rf"^#{{1,{len(level)}}} ", text[start + len(heading) :], re.MULTILINE)
    return text[start : start + len(heading) + end.start()] if end else text[start:]


def test_render_macros():
    text = render(DEFS)
    assert text.startswith("<!-- Generated by //docs:rules_md")
    assert render_rule_docs.REGENERATE in text
    assert "[Macros](#macros) · [Rules](#rules) · [Platforms](#platforms)\n" in text
    macros = section(text, "## Macros")
    # The module docstring introduces its first section; `<` outside code is escaped, not inside code blocks.
    assert macros.startswith("## Macros\n\nPublic API: `<x>` things.\n\n```starlark\n")
    assert 'thing(name = "<x>")\n```\n' in macros
    assert section(text, "### my_macro") == (
        "### my_macro\n\n```starlark\n"
        'load("@my_rules//rules:defs.bzl", "my_macro")\n\n'
        "my_macro(name, extra = [], **kwargs)\n```\n\n"
        "A macro.\n\nMore text.\n\nReturns: nothing.\n\n"
        "| Name | Default | Mandatory | Doc |\n| --- | --- | --- | --- |\n"
        "| `name` |  | yes | target name. |\n"
        "| `extra` | `[]` | no | extra args for the `<name>_test`. |\n"
        "| `**kwargs` |  | no | passed on. |\n\n"
    )


def test_render_rules():
    text = render(DEFS)
    rules = section(text, "## Rules")
    assert rules.startswith(f"## Rules\n\n{render_rule_docs.RULES_INTRO}\n\n### check_test\n")  # sorted by name
    assert section(text, "### thing") == (
        "### thing\n\n"
        '`load("@my_rules//rules:defs.bzl", "thing")` (executable)\n\n'
        "Makes a `<name>` thing | with a pipe.\n\n"
        "| Name | Type | Default | Mandatory | Doc |\n| --- | --- | --- | --- | --- |\n"
        "| `flag` | `bool` |  | yes | A flag. |\n"
        '| `format` | `string` | `"tar.zst"` | no | The format. |\n'
        "| `srcs` | `label_list` | `[]` | no | The sources. Providers: `FooInfo` or `BarInfo` and `BazInfo`. |\n\n"
    )
    check = section(text, "### check_test")
    assert '"check_test")` (test)\n\nChecks with ü.\n' in check
    assert "| `data` | `label_keyed_string_dict` | `{}` | no | Data. |" in check
    assert "| `name` |" not in rules


def test_render_table_cells_escape_pipes_and_html():
    text = render(DEFS.replace('"The format."', '"a | b <c> `<d>`\\nnext line."'))
    assert r"| a \| b \<c> `<d>` next line. |" in text


def test_render_module_extension_and_providers():
    text = render(EXTENSIONS, PROVIDERS)
    assert "[Module extension](#module-extension) · [Providers](#providers) · [Platforms](#platforms)" in text
    assert section(text, "### ext") == (
        "### ext\n\n"
        '`ext = use_extension("@my_rules//rules:extensions.bzl", "ext")`\n\n'
        "Declares repositories.\n\n"
        "#### ext.extra\n\nMore.\n\n"
        "| Name | Type | Default | Mandatory | Doc |\n| --- | --- | --- | --- | --- |\n\n"
        "#### ext.lock_file\n\nA lock file.\n\n"
        "| Name | Type | Default | Mandatory | Doc |\n| --- | --- | --- | --- | --- |\n"
        "| `path` | `label` |  | yes | Its path. |\n\n"
    )
    assert section(text, "## Module extension").startswith("## Module extension\n\nModule extension.\n\n### ext\n")
    assert section(text, "## Providers") == (
        "## Providers\n\nProviders.\n\n"
        "### FooInfo\n\n"
        '`load("@my_rules//rules:providers.bzl", "FooInfo")`\n\n'
        "Foo.\n\n"
        "| Field | Doc |\n| --- | --- |\n| `alpha` | First. |\n| `zeta` | Last. |\n\n"
    )


def test_render_platforms():
    text = render(PROVIDERS)
    assert section(text, "## Platforms") == (
        "## Platforms\n\nTarget platforms.\n\n"
        + render_rule_docs.PLATFORMS_INTRO.format(pkg="@my_rules//platforms")
        + "\n\n| Name | Constraint values |\n| --- | --- |\n"
        "| `linux_x86_64` | `@platforms//os:linux`, `@platforms//cpu:x86_64` |\n"
        "| `win_amd64` | `@platforms//os:windows` |\n"
    )
    assert text.endswith("| `win_amd64` | `@platforms//os:windows` |\n")


@pytest.mark.parametrize(
    ("parameters", "expected"),
    [
        ('name: "a"\n mandatory: true', ["a"]),
        ('name: "a"\n mandatory: true\n}\nparameter {\n name: "kwargs"', ["a", "**kwargs"]),
        ('name: "a"\n default_value: "1"\n}\nparameter {\n name: "args"', ["a", "*args"]),
        ('name: "rest"\n}\nparameter {\n name: "kw"', ["*rest", "**kw"]),
        ('name: "a"\n role: PARAM_ROLE_ORDINARY\n}\nparameter {\n name: "b"\n role: PARAM_ROLE_VARARGS', ["a", "*b"]),
        ('name: "k"\n role: PARAM_ROLE_KWARGS', ["**k"]),
    ],
)
def test_parameter_names(parameters, expected):
    fn = render_rule_docs.parse(f"func_info {{\nparameter {{\n{parameters}\n}}\n}}\n").one("func_info")
    assert render_rule_docs.parameter_names(fn) == expected


def test_main_writes_output_or_names_problems(tmp_path, capsys):
    paths = {}
    for name, text in {"defs": DEFS, "providers": PROVIDERS, "platforms": PLATFORMS}.items():
        paths[name] = tmp_path / f"{name}.textproto"
        paths[name].write_text(text, encoding="utf-8")
    (tmp_path / "platforms.json").write_text(json.dumps(TARGET_PLATFORMS), encoding="utf-8")
    output = tmp_path / "rules.md"
    argv = ["--platforms", str(paths["platforms"]), "--target-platforms", str(tmp_path / "platforms.json")]
    argv += ["--output", str(output), str(paths["defs"]), str(paths["providers"])]
    assert render_rule_docs.main(argv) == 0
    assert output.read_text(encoding="utf-8") == render(DEFS, PROVIDERS)

    output.unlink()
    paths["providers"].write_text(PROVIDERS.replace('doc_string: "Last."\n', ""), encoding="utf-8")
    assert render_rule_docs.main(argv) == 1
    err = capsys.readouterr().err
    assert "render_rule_docs: @my_rules//rules:providers.bzl: provider FooInfo: field `zeta` has no doc\n" in err
    assert "1 problem(s); nothing written" in err
    assert not output.exists()


def test_every_public_bzl_file_is_documented():
    """Each .bzl file of rules/ is extracted by docs/BUILD.bazel, and docs/rules.md is the renderer's output."""
    build = (ROOT / "docs" / "BUILD.bazel").read_text(encoding="utf-8")
    for bzl in sorted((ROOT / "rules").glob("*.bzl")):
        assert f'src = "//rules:{bzl.name}"' in build, bzl.name
    assert 'src = "//platforms:platforms.bzl"' in build
    rules_md = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    assert rules_md.startswith("<!-- Generated by //docs:rules_md") and render_rule_docs.REGENERATE in rules_md
