#!/usr/bin/env python3
"""Generates docs/rules.md, the reference of rules_venvstacks, from the docstrings of its Starlark sources.

Stardoc needs the Bazel Central Registry, so this reads the .bzl files itself: Starlark is close enough to Python
that `exec` evaluates them, in a namespace of stubs (`rule`, `attr.*`, `provider`, `tag_class`, `module_extension`,
...) that record what they are called with. `load()` of a file of this repository evaluates that file (once);
symbols loaded from other repositories are opaque placeholders.

It fails, naming each, when a public macro, rule, rule attribute, provider field, module extension, tag class or
tag-class attribute has no documentation.

    python3 tools/gen_rule_docs.py          # writes docs/rules.md
    python3 tools/gen_rule_docs.py --check  # exit 1 if docs/rules.md is stale
"""

from __future__ import annotations

import argparse
import ast
import inspect
import json
import re
import sys
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = "docs/rules.md"
DEFS = "rules/defs.bzl"
EXTENSIONS = "rules/extensions.bzl"
PROVIDERS = "rules/providers.bzl"
PLATFORMS = "platforms/platforms.bzl"
REGENERATE = "python3 tools/gen_rule_docs.py"
DEFAULT_REPO_NAME = "rules_venvstacks"

T = TypeVar("T")

# The value an attribute has when its rule's caller does not set it and it declares no default.
IMPLICIT_DEFAULTS: dict[str, object] = {
    "bool": False,
    "int": 0,
    "int_list": [],
    "label": None,
    "label_keyed_string_dict": {},
    "label_list": [],
    "output": None,
    "output_list": [],
    "string": "",
    "string_dict": {},
    "string_keyed_label_dict": {},
    "string_list": [],
    "string_list_dict": {},
}

# Bazel globals that only matter inside implementation functions (never run here), or whose value is opaque.
OPAQUE_GLOBALS = [
    "AnalysisTestResultInfo",
    "CcInfo",
    "DefaultInfo",
    "InstrumentedFilesInfo",
    "OutputGroupInfo",
    "PyInfo",
    "RunEnvironmentInfo",
    "analysis_test_transition",
    "apple_common",
    "cc_common",
    "config",
    "config_common",
    "configuration_field",
    "coverage_common",
    "depset",
    "exec_group",
    "json",
    "native",
    "platform_common",
    "proto",
    "subrule",
    "testing",
    "transition",
    "visibility",
]


class BzlError(Exception):
    """A .bzl file that cannot be evaluated here."""


class UndocumentedError(Exception):
    """Public API without documentation; `problems` names each item."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


# Stubs of the Starlark globals.


class Opaque:
    """A value this generator does not model: every operation on it yields another placeholder."""

    def __init__(self, text: str) -> None:
        self._text = text

    def __repr__(self) -> str:
        return self._text

    def __getattr__(self, name: str) -> Opaque:
        if name.startswith("__"):
            raise AttributeError(name)
        return Opaque(f"{self._text}.{name}")

    def __call__(self, *args: object, **kwargs: object) -> Opaque:
        return Opaque(f"{self._text}(...)")

    def __getitem__(self, key: object) -> Opaque:
        return Opaque(f"{self._text}[...]")

    def __iter__(self) -> Iterator[object]:
        return iter(())

    def __len__(self) -> int:
        return 0

    def __or__(self, other: object) -> Opaque:
        return self

    def __ror__(self, other: object) -> Opaque:
        return self


@dataclass(frozen=True)
class Label:
    value: str

    def __repr__(self) -> str:
        return f"Label({json.dumps(self.value)})"


@dataclass
class Attr:
    """The result of `attr.<kind>(**kwargs)`."""

    kind: str
    kwargs: dict[str, object]

    @property
    def doc(self) -> str:
        return _doc(self.kwargs.get("doc"))


@dataclass(eq=False)
class Named:
    """A value whose name is the global it is first assigned to (set after its file is evaluated)."""

    kwargs: dict[str, object]
    name: str = ""
    origin: str = ""  # label of the defining file

    @property
    def doc(self) -> str:
        return _doc(self.kwargs.get("doc"))


@dataclass(eq=False)
class Rule(Named):
    kind: str = "rule"  # rule, repository_rule, aspect or macro

    @property
    def attrs(self) -> dict[str, Attr]:
        return _attrs(self.kwargs.get("attrs"))


@dataclass(eq=False)
class Provider(Named):
    pass


@dataclass(eq=False)
class TagClass(Named):
    @property
    def attrs(self) -> dict[str, Attr]:
        return _attrs(self.kwargs.get("attrs"))


@dataclass(eq=False)
class ModuleExtension(Named):
    @property
    def tag_classes(self) -> dict[str, TagClass]:
        tags = self.kwargs.get("tag_classes") or {}
        assert isinstance(tags, dict)
        return {str(k): v for k, v in tags.items() if isinstance(v, TagClass)}


def _doc(value: object) -> str:
    return inspect.cleandoc(value) if isinstance(value, str) else ""


def _attrs(value: object) -> dict[str, Attr]:
    if not isinstance(value, dict):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, Attr)}


class _AttrModule:
    """The `attr` module: `attr.string(doc = ...)` and the other attribute constructors."""

    def __getattr__(self, kind: str) -> Callable[..., Attr]:
        if kind not in IMPLICIT_DEFAULTS:
            raise AttributeError(f"attr.{kind}")

        def make(**kwargs: object) -> Attr:
            return Attr(kind, kwargs)

        return make


def _rule_stub(kind: str) -> Callable[..., Rule]:
    def make(*args: object, **kwargs: object) -> Rule:
        if args:
            kwargs = {"implementation": args[0]} | kwargs
        return Rule(kwargs, kind=kind)

    return make


def _provider(doc: object = None, *, fields: object = None, init: object = None) -> Provider | tuple[Provider, Opaque]:
    provider = Provider({"doc": doc, "fields": fields})
    return (provider, Opaque("<raw provider constructor>")) if init is not None else provider


def _tag_class(attrs: object = None, *, doc: object = None) -> TagClass:
    return TagClass({"attrs": attrs, "doc": doc})


def _module_extension(*args: object, **kwargs: object) -> ModuleExtension:
    if args:
        kwargs = {"implementation": args[0]} | kwargs
    return ModuleExtension(kwargs)


def _fail(*args: object, **kwargs: object) -> None:
    raise BzlError("fail() at the top level: " + " ".join(str(a) for a in args))


def _select(branches: object, no_match_error: str = "") -> Opaque:
    return Opaque("select(...)")


def starlark_globals() -> dict[str, object]:
    """The predeclared names of a .bzl file (besides `load`, which is per file)."""
    names: dict[str, object] = {name: Opaque(name) for name in OPAQUE_GLOBALS}
    names |= {
        "Label": Label,
        "aspect": _rule_stub("aspect"),
        "attr": _AttrModule(),
        "fail": _fail,
        "macro": _rule_stub("macro"),
        "module_extension": _module_extension,
        "print": lambda *args, **kwargs: None,
        "provider": _provider,
        "repository_rule": _rule_stub("repository_rule"),
        "rule": _rule_stub("rule"),
        "select": _select,
        "struct": types.SimpleNamespace,
        "tag_class": _tag_class,
    }
    return names


# Evaluating .bzl files.


@dataclass
class Module:
    """One evaluated .bzl file."""

    path: Path
    label: str  # //package:file.bzl
    docstring: str
    symbols: dict[str, object]  # every global the file binds, in binding order
    loaded: set[str] = field(default_factory=set)  # globals bound by load()

    def public(self) -> dict[str, object]:
        return {k: v for k, v in self.symbols.items() if not k.startswith("_")}

    def macros(self) -> dict[str, types.FunctionType]:
        """Public functions defined in this file (not loaded)."""
        return {
            k: v
            for k, v in self.public().items()
            if isinstance(v, types.FunctionType) and k not in self.loaded and v.__globals__ is self.symbols
        }

    def of_type(self, kind: type[T]) -> dict[str, T]:
        """Public values of `kind` bound in this file, each under its first public name."""
        found: dict[str, T] = {}
        for name, value in self.public().items():
            if isinstance(value, kind) and not any(value is seen for seen in found.values()):
                found[name] = value
        return found


class Evaluator:
    """Evaluates the .bzl files of one repository, each once."""

    def __init__(self, root: Path, repo_name: str | None = None) -> None:
        self.root = root.resolve()
        self.repo_name = repo_name or _module_name(self.root)
        self._modules: dict[Path, Module] = {}
        self._evaluating: list[Path] = []

    def label(self, path: Path) -> str:
        rel = path.resolve().relative_to(self.root)
        return "//{}:{}".format(rel.parent.as_posix() if rel.parent != Path() else "", rel.name)

    def module(self, path: Path) -> Module:
        path = path.resolve()
        if path in self._modules:
            return self._modules[path]
        if path in self._evaluating:
            cycle = " -> ".join(self.label(p) for p in [*self._evaluating, path])
            raise BzlError(f"load cycle: {cycle}")
        if not path.is_file():
            raise BzlError(f"{path} does not exist")
        self._evaluating.append(path)
        try:
            module = self._evaluate(path)
        finally:
            self._evaluating.pop()
        self._modules[path] = module
        return module

    def _evaluate(self, path: Path) -> Module:
        label = self.label(path)
        source = path.read_text(encoding="utf-8")
        try:
            tree = ast.parse(source, filename=str(path))
        except SyntaxError as error:
            raise BzlError(f"{label}: cannot parse as Python: {error}") from error
        predeclared = starlark_globals()
        namespace: dict[str, object] = dict(predeclared)
        loaded: set[str] = set()
        package = path.resolve().parent.relative_to(self.root).as_posix()
        package = "" if package == "." else package

        def load(target: str, *names: str, **aliases: str) -> None:
            bindings = {name: name for name in names} | aliases
            file = self.resolve(target, package)
            if file is None:  # another repository: placeholders
                values = {local: Opaque(f"{symbol} from {target}") for local, symbol in bindings.items()}
            else:
                symbols = self.module(file).symbols
                values = {}
                for local, symbol in bindings.items():
                    if symbol.startswith("_") or symbol not in symbols:
                        raise BzlError(f"{label}: load({target!r}): no public symbol {symbol!r}")
                    values[local] = symbols[symbol]
            namespace.update(values)
            loaded.update(values)

        namespace["load"] = load
        try:
            exec(compile(tree, str(path), "exec"), namespace)
        except BzlError:
            raise
        except Exception as error:
            raise BzlError(f"{label}: evaluation failed: {type(error).__name__}: {error}") from error
        symbols = {
            k: v
            for k, v in namespace.items()
            if k not in ("load", "__builtins__") and not (k in predeclared and predeclared[k] is v)
        }
        for name, value in symbols.items():
            if isinstance(value, Named) and not value.name and name not in loaded:
                value.name, value.origin = name, label
        # Functions defined in the file keep the whole namespace as their globals: make it the symbol table.
        namespace.clear()
        namespace.update(symbols)
        return Module(path, label, inspect.cleandoc(ast.get_docstring(tree) or ""), namespace, loaded)

    def resolve(self, target: str, package: str) -> Path | None:
        """The file of a load() label, or None for a label of another repository."""
        rest = target
        if target.startswith("@"):
            repo, sep, rest = target.lstrip("@").partition("//")
            if not sep:
                raise BzlError(f"cannot resolve load label {target!r}")
            if repo.rstrip("+~") not in ("", self.repo_name):
                return None
            rest = "//" + rest
        if rest.startswith("//"):
            pkg, colon, name = rest[2:].partition(":")
            if not colon:
                raise BzlError(f"load label {target!r} names no file")
        else:
            pkg, name = package, rest.removeprefix(":")
        return self.root / pkg / name


def _module_name(root: Path) -> str:
    module = root / "MODULE.bazel"
    if module.is_file():
        found = re.search(r"\bmodule\(\s*name\s*=\s*\"([^\"]+)\"", module.read_text(encoding="utf-8"))
        if found:
            return found.group(1)
    return DEFAULT_REPO_NAME


# Macros: Google-style docstrings.


@dataclass
class Param:
    name: str  # with * or ** for variadic parameters
    default: str  # Starlark expression, "" when there is none
    mandatory: bool


@dataclass
class Macro:
    name: str
    origin: str
    params: list[Param]
    description: str
    args: dict[str, str]  # parameter name without stars -> doc
    has_docstring: bool

    @property
    def signature(self) -> str:
        parts = [f"{p.name} = {p.default}" if p.default else p.name for p in self.params]
        return "{}({})".format(self.name, ", ".join(parts))


def parse_docstring(docstring: str) -> tuple[str, dict[str, str]]:
    """(the docstring without its Args: section, parameter name -> doc) of a Google-style docstring."""
    lines = inspect.cleandoc(docstring).splitlines()
    kept: list[str] = []
    args: dict[str, str] = {}
    in_args = False
    current = ""
    entry_indent = -1
    for line in lines:
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if stripped == "Args:" and indent == 0:
            in_args, entry_indent, current = True, -1, ""
            continue
        if in_args and stripped and indent == 0:
            in_args = False
        if not in_args:
            kept.append(line)
            continue
        if not stripped:
            continue
        if entry_indent < 0:
            entry_indent = indent
        entry = re.match(r"(\*{0,2}\w+)(?:\s*\([^)]*\))?:(.*)$", stripped) if indent == entry_indent else None
        if entry:
            current = entry.group(1).lstrip("*")
            args[current] = entry.group(2).strip()
        elif current:
            args[current] = f"{args[current]} {stripped}".strip()
    return "\n".join(kept).strip(), args


def macro_of(name: str, function: types.FunctionType, origin: str) -> Macro:
    params = []
    for p in inspect.signature(function).parameters.values():
        if p.kind is inspect.Parameter.VAR_POSITIONAL:
            params.append(Param("*" + p.name, "", False))
        elif p.kind is inspect.Parameter.VAR_KEYWORD:
            params.append(Param("**" + p.name, "", False))
        elif p.default is inspect.Parameter.empty:
            params.append(Param(p.name, "", True))
        else:
            params.append(Param(p.name, starlark_repr(p.default), False))
    description, args = parse_docstring(function.__doc__ or "")
    return Macro(name, origin, params, description, args, bool((function.__doc__ or "").strip()))


# What docs/rules.md documents.


@dataclass
class Reference:
    defs: Module
    extensions: Module
    providers: Module
    platforms: Module
    macros: list[Macro]
    rules: dict[str, Rule]
    module_extensions: dict[str, ModuleExtension]
    provider_types: dict[str, Provider]
    target_platforms: dict[str, list[str]]


def collect(root: Path = ROOT) -> Reference:
    evaluator = Evaluator(root)
    defs = evaluator.module(root / DEFS)
    extensions = evaluator.module(root / EXTENSIONS)
    providers = evaluator.module(root / PROVIDERS)
    platforms = evaluator.module(root / PLATFORMS)
    target_platforms = platforms.symbols.get("TARGET_PLATFORMS")
    if not isinstance(target_platforms, dict):
        raise BzlError(f"{platforms.label} defines no TARGET_PLATFORMS dict")
    return Reference(
        defs=defs,
        extensions=extensions,
        providers=providers,
        platforms=platforms,
        macros=[macro_of(name, fn, defs.label) for name, fn in defs.macros().items()],
        rules=dict(sorted(defs.of_type(Rule).items())),
        module_extensions=dict(sorted(extensions.of_type(ModuleExtension).items())),
        provider_types=dict(sorted(providers.of_type(Provider).items())),
        target_platforms={str(k): [str(c) for c in v] for k, v in sorted(target_platforms.items())},
    )


# The documentation check.


def _where(item: Named, fallback: str) -> str:
    return item.origin or fallback


def macro_problems(macro: Macro) -> list[str]:
    where = f"{macro.origin}: macro {macro.name}"
    if not macro.has_docstring:
        return [f"{where} has no docstring"]
    problems = []
    if not macro.description:
        problems.append(f"{where}: its docstring has no description")
    names = [p.name.lstrip("*") for p in macro.params]
    for param in macro.params:
        if not macro.args.get(param.name.lstrip("*")):
            problems.append(f"{where}: argument `{param.name}` is not documented in its docstring's Args:")
    problems += [
        f"{where}: Args: documents `{name}`, which is not a parameter" for name in macro.args if name not in names
    ]
    return problems


def attr_problems(where: str, attrs: dict[str, Attr]) -> list[str]:
    return [
        f"{where}: attribute `{name}` has no doc"
        for name, attr in sorted(attrs.items())
        if not name.startswith("_") and not attr.doc
    ]


def rule_problems(name: str, rule: Rule, fallback: str = "") -> list[str]:
    where = f"{_where(rule, fallback)}: {rule.kind} {name}"
    problems = [f"{where} has no doc"] if not rule.doc else []
    return problems + attr_problems(where, rule.attrs)


def provider_problems(name: str, provider: Provider, fallback: str = "") -> list[str]:
    where = f"{_where(provider, fallback)}: provider {name}"
    problems = [f"{where} has no doc"] if not provider.doc else []
    fields = provider.kwargs.get("fields")
    if isinstance(fields, list | tuple):
        problems += [f"{where}: field `{f}` has no doc (declare `fields` as a dict of field: doc)" for f in fields]
    elif isinstance(fields, dict):
        problems += [f"{where}: field `{f}` has no doc" for f, doc in sorted(fields.items()) if not _doc(doc)]
    return problems


def extension_problems(name: str, extension: ModuleExtension, fallback: str = "") -> list[str]:
    where = f"{_where(extension, fallback)}: module extension {name}"
    problems = [f"{where} has no doc"] if not extension.doc else []
    for tag_name, tag in sorted(extension.tag_classes.items()):
        tag_where = f"{where}: tag class {tag_name}"
        if not tag.doc:
            problems.append(f"{tag_where} has no doc")
        problems += attr_problems(tag_where, tag.attrs)
    return problems


def module_problems(module: Module) -> list[str]:
    """Undocumented public macros, rules, attributes, providers, extensions and tag classes of one file."""
    problems = []
    for name, fn in module.macros().items():
        problems += macro_problems(macro_of(name, fn, module.label))
    for name, rule in module.of_type(Rule).items():
        problems += rule_problems(name, rule, module.label)
    for name, provider in module.of_type(Provider).items():
        problems += provider_problems(name, provider, module.label)
    for name, extension in module.of_type(ModuleExtension).items():
        problems += extension_problems(name, extension, module.label)
    return problems


def check_file(path: Path, root: Path | None = None) -> list[str]:
    """module_problems() of one .bzl file; `root` (default: the file's directory) resolves its `//` loads."""
    evaluator = Evaluator(root or path.parent)
    return module_problems(evaluator.module(path))


def check(reference: Reference) -> list[str]:
    problems = []
    for macro in reference.macros:
        problems += macro_problems(macro)
    for name, rule in reference.rules.items():
        problems += rule_problems(name, rule)
    for name, extension in reference.module_extensions.items():
        problems += extension_problems(name, extension)
    for name, provider in reference.provider_types.items():
        problems += provider_problems(name, provider)
    return problems


# Markdown.


def starlark_repr(value: object) -> str:
    if value is None or isinstance(value, bool | int):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(starlark_repr(v) for v in value) + "]"
    if isinstance(value, tuple):
        return "(" + ", ".join(starlark_repr(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{starlark_repr(k)}: {starlark_repr(v)}" for k, v in value.items()) + "}"
    if isinstance(value, Named):
        return value.name or f"<{type(value).__name__}>"
    if isinstance(value, types.FunctionType):
        return value.__name__
    return repr(value)


def markdown(text: str) -> str:
    """Doc text as Markdown: `<` outside code is escaped (so `<name>` is not taken for an HTML tag)."""
    lines = []
    fenced = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            parts = re.split(r"(`[^`]*`)", line)
            line = "".join(p if i % 2 else p.replace("<", r"\<") for i, p in enumerate(parts))
        lines.append(line)
    return "\n".join(lines)


def cell(text: str) -> str:
    return markdown(" ".join(text.split())).replace("|", r"\|")


def code(text: str) -> str:
    return f"`{text}`"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(" --- " for _ in header) + "|",
        *["| " + " | ".join(row) + " |" for row in rows],
    ]


def _providers_text(value: object) -> str:
    if not isinstance(value, list) or not value:
        return ""
    groups = value if all(isinstance(v, list) for v in value) else [value]
    return " or ".join(" and ".join(code(starlark_repr(p)) for p in group) for group in groups)


def attr_rows(attrs: dict[str, Attr]) -> list[list[str]]:
    rows = []
    for name, attr in sorted(attrs.items()):
        if name.startswith("_"):
            continue
        kw = attr.kwargs
        mandatory = bool(kw.get("mandatory"))
        if "default" in kw:
            default = code(starlark_repr(kw["default"]))
        else:
            default = "" if mandatory else code(starlark_repr(IMPLICIT_DEFAULTS[attr.kind]))
        notes = [attr.doc]
        values = kw.get("values")
        if isinstance(values, list) and values:
            notes.append("Values: " + ", ".join(code(starlark_repr(v)) for v in values) + ".")
        if _providers_text(kw.get("providers")):
            notes.append(f"Providers: {_providers_text(kw.get('providers'))}.")
        for key, what in (("allow_single_file", "One file"), ("allow_files", "Files")):
            allowed = kw.get(key)
            if allowed is True:
                notes.append(f"{what}: any.")
            elif isinstance(allowed, list):
                notes.append(f"{what}: " + ", ".join(code(str(a)) for a in allowed) + ".")
        rows.append([code(name), code(attr.kind), default, "yes" if mandatory else "no", cell(" ".join(notes))])
    return rows


def _load(module: Module, repo: str, name: str) -> str:
    return f'load("@{repo}{module.label}", "{name}")'


def render(reference: Reference, repo: str = DEFAULT_REPO_NAME) -> str:
    out = [
        "<!-- Generated by tools/gen_rule_docs.py from the Starlark docstrings: do not edit. -->",
        "",
        "# rules_venvstacks reference",
        "",
        f"Generated from the docstrings and `doc` strings of `rules/` and `platforms/`; do not edit this file. "
        f"Regenerate it with `{REGENERATE}` (tests/unit/test_rule_docs.py fails while it is stale).",
        "",
        "[Macros](#macros) · [Rules](#rules) · [Module extension](#module-extension) · [Providers](#providers) · "
        "[Platforms](#platforms)",
        "",
        "## Macros",
        "",
        markdown(reference.defs.docstring),
        "",
    ]
    for macro in reference.macros:
        out += [f"### {macro.name}", "", "```starlark", _load(reference.defs, repo, macro.name), "", macro.signature]
        out += ["```", "", markdown(macro.description), ""]
        rows = [
            [code(p.name), code(p.default) if p.default else "", "yes" if p.mandatory else "no", cell(macro.args[n])]
            for p in macro.params
            if (n := p.name.lstrip("*")) in macro.args
        ]
        out += [*table(["Name", "Default", "Mandatory", "Doc"], rows), ""]

    out += [
        "## Rules",
        "",
        "Attributes every rule has (`name`, `tags`, `visibility`, `testonly`, ...; `size`, `timeout`, ... of tests) "
        "are not listed.",
        "",
    ]
    for name, rule in reference.rules.items():
        traits = [t for t in ("executable", "test") if rule.kwargs.get(t)]
        where = f"Defined in `{rule.origin}`" + (f" ({', '.join(traits)})" if traits else "") + "."
        if name in reference.defs.public() and name not in reference.defs.loaded:
            where = f"`{_load(reference.defs, repo, name)}`" + (f" ({', '.join(traits)})" if traits else "")
        out += [f"### {name}", "", where, "", markdown(rule.doc), ""]
        out += [*table(["Name", "Type", "Default", "Mandatory", "Doc"], attr_rows(rule.attrs)), ""]

    out += ["## Module extension", "", markdown(reference.extensions.docstring), ""]
    for name, extension in reference.module_extensions.items():
        usage = f'{name} = use_extension("@{repo}{reference.extensions.label}", "{name}")'
        out += [f"### {name}", "", f"`{usage}`", "", markdown(extension.doc), ""]
        for tag_name, tag in sorted(extension.tag_classes.items()):
            out += [f"#### {name}.{tag_name}", "", markdown(tag.doc), ""]
            out += [*table(["Name", "Type", "Default", "Mandatory", "Doc"], attr_rows(tag.attrs)), ""]

    out += ["## Providers", "", markdown(reference.providers.docstring), ""]
    for name, provider in reference.provider_types.items():
        out += [f"### {name}", "", f"`{_load(reference.providers, repo, name)}`", "", markdown(provider.doc), ""]
        fields = provider.kwargs.get("fields")
        if isinstance(fields, dict):
            rows = [[code(str(f)), cell(_doc(doc))] for f, doc in sorted(fields.items())]
            out += [*table(["Field", "Doc"], rows), ""]

    out += [
        "## Platforms",
        "",
        markdown(reference.platforms.docstring),
        "",
        f"Each is a `platform`, `@{repo}//platforms:<name>` (build for it with `--platforms=`), with a "
        f"`config_setting` `@{repo}//platforms:is_<name>` for `select()`; `@{repo}//platforms:current` provides "
        "the configured one's name as `TargetPlatformInfo`.",
        "",
    ]
    rows = [[code(p), ", ".join(code(c) for c in cs)] for p, cs in reference.target_platforms.items()]
    out += table(["Name", "Constraint values"], rows)
    return "\n".join(out).rstrip() + "\n"


def generate(root: Path = ROOT) -> str:
    """The content of docs/rules.md; raises UndocumentedError when public API lacks documentation."""
    reference = collect(root)
    problems = check(reference)
    if problems:
        raise UndocumentedError(problems)
    return render(reference, _module_name(root))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root (default: this checkout)")
    parser.add_argument("--check", action="store_true", help=f"do not write; exit 1 if {OUTPUT} is stale")
    args = parser.parse_args(argv)
    root: Path = args.root
    try:
        text = generate(root)
    except UndocumentedError as error:
        for problem in error.problems:
            print(f"gen_rule_docs: {problem}", file=sys.stderr)
        print(f"gen_rule_docs: {len(error.problems)} undocumented item(s); {OUTPUT} not written", file=sys.stderr)
        return 1
    except BzlError as error:
        print(f"gen_rule_docs: {error}", file=sys.stderr)
        return 1
    output = root / OUTPUT
    current = output.read_text(encoding="utf-8") if output.is_file() else None
    if args.check:
        if current != text:
            print(f"gen_rule_docs: {OUTPUT} is stale: run `{REGENERATE}`", file=sys.stderr)
            return 1
        return 0
    if current != text:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
        print(f"gen_rule_docs: wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
