"""Renders docs/rules.md from what Bazel evaluated: the ModuleInfo textprotos of `starlark_doc_extract`.

    render_rule_docs.py --output rules.md --platforms platforms.textproto --target-platforms platforms.json \
        defs.textproto extensions.textproto providers.textproto

Each module's macros, rules, module extensions and providers go to the section of their kind (a module's docstring
introduces the first section it contributes to); the target platforms (JSON: name -> {constraints: [...], ...}) with the
docstring of --platforms make the last. Fails, naming each, when public API has no documentation. Run by the
//docs:rules_md target (docs/BUILD.bazel); `bazel run //docs:update` writes the result to docs/rules.md.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REGENERATE = "bazel run //docs:update"
SECTIONS = {  # ModuleInfo field -> section title, name field, what an item is, its documented members, what they are
    "func_info": ("Macros", "function_name", "macro", "parameter", "argument"),
    "rule_info": ("Rules", "rule_name", "rule", "attribute", "attribute"),
    "module_extension_info": ("Module extension", "extension_name", "module extension", "", ""),  # + tag classes
    "provider_info": ("Providers", "provider_name", "provider", "field_info", "field"),
}
UNRENDERED = {  # ModuleInfo field -> what, name field
    "aspect_info": ("aspect", "aspect_name"),
    "repository_rule_info": ("repository rule", "rule_name"),
    "macro_info": ("symbolic macro", "macro_name"),
}
ROLES = {"PARAM_ROLE_VARARGS": "*", "PARAM_ROLE_KWARGS": "**"}  # stardoc_output.FunctionParamRole
ATTR_TYPES = {  # stardoc_output.AttributeType -> the attr module's function
    "BOOLEAN": "bool",
    "LABEL_STRING_DICT": "label_keyed_string_dict",
    "LABEL_DICT_UNARY": "string_keyed_label_dict",
    "LABEL_LIST_DICT": "string_keyed_label_list_dict",
}
RULES_INTRO = (
    "Attributes every rule has (`name`, `tags`, `visibility`, `testonly`, ...; `size`, `timeout`, ... of tests) "
    "are not listed."
)
PLATFORMS_INTRO = (
    "Each is a `platform`, `{pkg}:<name>` (build for it with `--platforms=`), with a `config_setting` "
    "`{pkg}:is_<name>` for `select()`; `{pkg}:current` provides the configured one's name as `TargetPlatformInfo`."
)


class RenderError(Exception):
    """Public API without documentation, or that this renderer does not render: one arg per item."""


# Text format: just what protobuf's printers write (fields, nested messages, strings, numbers, enum names).


@dataclass
class Message:
    fields: dict[str, list[Message | str]] = field(default_factory=dict)

    def all(self, name: str) -> list[Message]:
        return [v for v in self.fields.get(name, []) if isinstance(v, Message)]

    def one(self, name: str) -> Message:
        return next(iter(self.all(name)), Message())

    def texts(self, name: str) -> list[str]:
        return [v for v in self.fields.get(name, []) if isinstance(v, str)]

    def text(self, name: str) -> str:
        return next(iter(self.texts(name)), "")

    def flag(self, name: str) -> bool:
        return self.text(name) == "true"


def unquote(literal: str) -> str:
    """A string literal's text. Bazel 7 holds .bzl text as Latin-1 chars of its UTF-8 bytes: those are mended."""
    ascii_literal = "".join(chr(b) if b < 128 else f"\\x{b:02x}" for b in literal.encode())
    text = ast.literal_eval("b" + ascii_literal).decode("utf-8", errors="replace")
    try:
        return text.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return text


def parse(text: str) -> Message:
    """A message as protobuf's text printers write it: one `name: value`, `name {` or `}` per line."""
    stack = [Message()]
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        name, _, value = line.rstrip("{ ").partition(":")
        name = name.strip()
        if not line or line.startswith("#"):
            continue
        if line == "}" and len(stack) > 1:
            stack.pop()
        elif not re.fullmatch(r"\w+", name) or line.endswith("{") == bool(value.strip()):
            raise ValueError(f"textproto line {number}: cannot parse {line!r}")
        elif line.endswith("{"):
            stack.append(Message())
            stack[-2].fields.setdefault(name, []).append(stack[-1])
        else:
            value = value.strip()
            stack[-1].fields.setdefault(name, []).append(unquote(value) if value[0] in "\"'" else value)
    if len(stack) > 1:
        raise ValueError("textproto: a message is not closed")
    return stack[0]


# The documentation check.


def public_attributes(item: Message) -> list[Message]:
    """The attributes a user sets (not `name`, not private ones), by name."""
    attributes = [a for a in item.all("attribute") if a.text("type") != "NAME" and not a.text("name").startswith("_")]
    return sorted(attributes, key=lambda a: a.text("name"))


def undocumented(prefix: str, item: Message, children: str, child: str) -> list[str]:
    """`item` without doc, and its children (`children` field: `child`s) without doc."""
    found = [] if item.text("doc_string").strip() else [f"{prefix} has no doc"]
    members = public_attributes(item) if children == "attribute" else item.all(children)
    return found + [
        f"{prefix}: {child} `{c.text('name')}` has no doc" for c in members if not c.text("doc_string").strip()
    ]


def problems(module: Message) -> list[str]:
    """Undocumented public macros, arguments, rules, attributes, providers, fields, extensions and tag classes."""
    found = [
        f"{module.text('file')}: {what} {item.text(name_field)} is not rendered (aspects, repository rules and "
        "symbolic macros are not supported)"
        for key, (what, name_field) in UNRENDERED.items()
        for item in module.all(key)
    ]
    for key, (_, name_field, what, children, child) in SECTIONS.items():
        for item in module.all(key):
            where = item.one("origin_key").text("file") or module.text("file")  # where it is defined
            prefix = f"{where}: {what} {item.text(name_field)}"
            found += undocumented(prefix, item, children, child)
            for tag in item.all("tag_class"):
                found += undocumented(f"{prefix}: tag class {tag.text('tag_name')}", tag, "attribute", "attribute")
    return found


# Markdown.


def markdown(text: str) -> str:
    """Doc text as Markdown: `<` outside code is escaped (so `<name>` is not taken for an HTML tag)."""
    lines, fenced = [], False
    for line in text.strip().splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            line = "".join(p if i % 2 else p.replace("<", r"\<") for i, p in enumerate(re.split(r"(`[^`]*`)", line)))
        lines.append(line)
    return "\n".join(lines)


def cell(text: str) -> str:
    return markdown(" ".join(text.split())).replace("|", r"\|")


def code(text: str) -> str:
    return f"`{text}`" if text else ""


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    return [*lines, *("| " + " | ".join(row) + " |" for row in rows), ""]


def heading(level: str, name: str, usage: str, doc: str) -> list[str]:
    return [f"{level} {name}", "", *([usage, ""] if usage else []), markdown(doc), ""]


def attr_table(item: Message) -> list[str]:
    rows = []
    for a in public_attributes(item):
        groups = [" and ".join(map(code, g.texts("provider_name"))) for g in a.all("provider_name_group")]
        doc = a.text("doc_string") + (f" Providers: {' or '.join(groups)}." if groups else "")
        kind = ATTR_TYPES.get(a.text("type"), a.text("type").lower())
        mandatory = "yes" if a.flag("mandatory") else "no"
        rows.append([code(a.text("name")), code(kind), code(a.text("default_value")), mandatory, cell(doc)])
    return table(["Name", "Type", "Default", "Mandatory", "Doc"], rows)


def parameter_names(fn: Message) -> list[str]:
    """Parameter names, with `*`/`**` on variadic ones: by role where Bazel gives it (8+); else (Bazel 7 lists them
    last) those neither mandatory nor with a default (`*args` first; a lone one is `**` unless it is `args`)."""
    params = fn.all("parameter")
    if any(p.text("role") for p in params):
        return [ROLES.get(p.text("role"), "") + p.text("name") for p in params]
    plain = [p.text("name") for p in params if p.flag("mandatory") or p.text("default_value")]
    rest = [p.text("name") for p in params][len(plain) :]
    stars = ["*", "**"] if len(rest) == 2 else ["*" if rest == ["args"] else "**"] * len(rest)
    return plain + [s + n for s, n in zip(stars, rest, strict=True)]


def render_macro(fn: Message, file: str) -> list[str]:
    name, params = fn.text("function_name"), fn.all("parameter")
    names = parameter_names(fn)
    values = [p.text("default_value") for p in params]
    signature = ", ".join(f"{n} = {v}" if v else n for n, v in zip(names, values, strict=True))
    out = [f"### {name}", "", "```starlark", f'load("{file}", "{name}")', "", f"{name}({signature})", "```", ""]
    out += [markdown(fn.text("doc_string")), ""]
    for title, key in (("Returns", "return"), ("Deprecated", "deprecated")):
        out += [f"{title}: {markdown(fn.one(key).text('doc_string'))}", ""] if fn.one(key).text("doc_string") else []
    rows = [
        [code(n), code(v), "yes" if p.flag("mandatory") else "no", cell(p.text("doc_string"))]
        for n, v, p in zip(names, values, params, strict=True)
    ]
    return out + table(["Name", "Default", "Mandatory", "Doc"], rows)


def render_item(key: str, item: Message, file: str) -> list[str]:
    name = item.text(SECTIONS[key][1])
    load = f'`load("{file}", "{name}")`'
    if key == "func_info":
        return render_macro(item, file)
    if key == "rule_info":
        trait = " (test)" if item.flag("test") else " (executable)" if item.flag("executable") else ""
        return heading("###", name, load + trait, item.text("doc_string")) + attr_table(item)
    if key == "provider_info":
        fields = sorted(item.all("field_info"), key=lambda f: f.text("name"))
        rows = [[code(f.text("name")), cell(f.text("doc_string"))] for f in fields]
        return heading("###", name, load, item.text("doc_string")) + table(["Field", "Doc"], rows)
    out = heading("###", name, f'`{name} = use_extension("{file}", "{name}")`', item.text("doc_string"))
    for tag in sorted(item.all("tag_class"), key=lambda t: t.text("tag_name")):
        out += heading("####", f"{name}.{tag.text('tag_name')}", "", tag.text("doc_string")) + attr_table(tag)
    return out


def render(modules: list[Message], platforms: Message, target_platforms: dict[str, dict[str, Any]]) -> str:
    """docs/rules.md; raises RenderError naming every undocumented item."""
    found = [problem for module in modules for problem in problems(module)]
    if found:
        raise RenderError(*found)
    sections: dict[str, list[str]] = {}
    introduced: set[int] = set()  # modules whose docstring is out
    for key, (title, name_field, *_) in SECTIONS.items():
        items = [(item, index) for index, module in enumerate(modules) for item in module.all(key)]
        if key != "func_info":  # macros stay in file order
            items.sort(key=lambda pair: pair[0].text(name_field))
        if not items:
            continue
        sections[title] = [f"## {title}", "", *([RULES_INTRO, ""] if key == "rule_info" else [])]
        for index in sorted({index for _, index in items} - introduced):
            introduced.add(index)
            sections[title] += [markdown(modules[index].text("module_docstring")), ""]
        for item, index in items:
            sections[title] += render_item(key, item, modules[index].text("file"))
    package = platforms.text("file").rpartition(":")[0]
    rows = [[code(name), ", ".join(map(code, p["constraints"]))] for name, p in sorted(target_platforms.items())]
    intro = [markdown(platforms.text("module_docstring")), "", PLATFORMS_INTRO.format(pkg=package), ""]
    sections["Platforms"] = ["## Platforms", "", *intro, *table(["Name", "Constraint values"], rows)]
    head = [
        "<!-- Generated by //docs:rules_md (docs/render_rule_docs.py) from starlark_doc_extract: do not edit. -->",
        "",
        "# rules_venvstacks reference",
        "",
        "Generated from the docstrings and `doc` strings of `rules/` and `platforms/`; do not edit this file. "
        f"Regenerate it with `{REGENERATE}` (`bazel test //docs:rules_md_test` fails while it is stale).",
        "",
        " · ".join(f"[{t}](#{t.lower().replace(' ', '-')})" for t in sections),
        "",
    ]
    return "\n".join(head + [line for lines in sections.values() for line in lines]).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("modules", nargs="+", type=Path, help="ModuleInfo textprotos, in section order")
    parser.add_argument("--platforms", type=Path, required=True, help="ModuleInfo textproto of platforms.bzl")
    parser.add_argument("--target-platforms", type=Path, required=True, help="JSON: name -> {constraints: [...], ...}")
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        text = render(
            [parse(path.read_text(encoding="utf-8")) for path in args.modules],
            parse(args.platforms.read_text(encoding="utf-8")),
            json.loads(args.target_platforms.read_text(encoding="utf-8")),
        )
    except RenderError as error:
        for problem in error.args:
            print(f"render_rule_docs: {problem}", file=sys.stderr)
        print(f"render_rule_docs: {len(error.args)} problem(s); nothing written", file=sys.stderr)
        return 1
    args.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
