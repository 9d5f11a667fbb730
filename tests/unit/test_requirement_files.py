"""Tests for stacktool.requirement_files: requirements.in-style files and pyproject.toml (PEP 621, PEP 735)."""

from __future__ import annotations

import pytest
from stacktool.requirement_files import RequirementFileError, read_requirement_files


def write(root, files: dict[str, str]):
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def test_requirements_lines_comments_continuations_and_listed_includes(tmp_path):
    write(tmp_path, {
        "reqs/base.in": "# base\nsix==1.16.0  # pinned\n\n-r common.in\nnumpy>=2 ; \\\n  sys_platform == 'linux'\n",
        "reqs/common.in": "--requirement=more.in\nattrs\n",
        "reqs/more.in": "idna==3.10\n",
    })  # fmt: skip
    files = ("reqs/base.in", "reqs/common.in", "reqs/more.in")
    assert read_requirement_files(tmp_path, files, ()) == [
        "six==1.16.0",
        "numpy>=2 ;   sys_platform == 'linux'",
        "attrs",
        "idna==3.10",
    ]


def test_include_that_is_not_listed_is_refused(tmp_path):
    write(tmp_path, {"reqs/base.in": "six\n-r common.in\n", "reqs/common.in": "attrs\n"})
    with pytest.raises(RequirementFileError) as error:
        read_requirement_files(tmp_path, ("reqs/base.in",), ())
    assert str(error.value) == (
        "reqs/base.in:2 includes common.in: list reqs/common.in in the layer's `requirements_files` too, so that "
        "Bazel knows when it changes"
    )


@pytest.mark.parametrize("option", ["-c constraints.txt", "-e .", "--index-url https://x.invalid", "--find-links d"])
def test_options_are_refused_naming_file_and_line(tmp_path, option):
    write(tmp_path, {"r.in": f"six\n{option}\n"})
    with pytest.raises(RequirementFileError) as error:
        read_requirement_files(tmp_path, ("r.in",), ())
    assert str(error.value).startswith(f"r.in:2: option {option.split()[0]!r} is not supported in requirements files")


def test_pyproject_dependencies_and_groups_with_includes(tmp_path):
    write(tmp_path, {"app/pyproject.toml": """
[project]
name = "app"
dependencies = ["six", "attrs>=23"]

[dependency-groups]
test = ["pytest"]
cli = [{include-group = "test"}, "tabulate"]
"""})  # fmt: skip
    assert read_requirement_files(tmp_path, ("app/pyproject.toml",), ()) == ["six", "attrs>=23"]
    assert read_requirement_files(tmp_path, ("app/pyproject.toml",), ("cli",)) == [
        "six",
        "attrs>=23",
        "pytest",
        "tabulate",
    ]


def test_pyproject_group_errors(tmp_path):
    write(tmp_path, {"pyproject.toml": '[dependency-groups]\na = [{include-group = "a"}]\n'})
    with pytest.raises(RequirementFileError, match=r"^pyproject.toml has no dependency group 'b' \(it has: a\)$"):
        read_requirement_files(tmp_path, ("pyproject.toml",), ("b",))
    with pytest.raises(RequirementFileError, match=r"^pyproject.toml: dependency group 'a' includes itself$"):
        read_requirement_files(tmp_path, ("pyproject.toml",), ("a",))


def test_missing_file(tmp_path):
    with pytest.raises(RequirementFileError, match=r"^stacks/nope.in does not exist in the workspace$"):
        read_requirement_files(tmp_path, ("stacks/nope.in",), ())
