"""Tests for stacktool.pylock: reading uv's PEP 751 output and writing per-layer lock files."""

from __future__ import annotations

import subprocess
import sys
import tomllib

import pytest
from packaging.markers import Marker
from stacktool.platforms import PLATFORMS, DeploymentTarget, platform
from stacktool.pylock import LayerLock, read_uv_lock, render_layer_lock, render_uv_preferences
from stacktool.wheel_choice import WheelFile

LINUX, MAC, WIN = platform("linux_x86_64"), platform("macosx_arm64"), platform("win_amd64")

SIX = WheelFile(
    "six-1.16.0-py2.py3-none-any.whl",
    "https://files.pythonhosted.org/packages/d9/5a/e7c31adbe875f2abbb91bd84cf2dc52d792b5a01506781dbcf25c91daf11/six-1.16.0-py2.py3-none-any.whl",
    "8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254",
    11053,
)
PACKAGING = WheelFile(
    "packaging-24.2-py3-none-any.whl",
    "https://files.pythonhosted.org/packages/88/ef/eb23f262cca3c0c4eb7ab1933c3b1f03d021f2c48f54763065b6f0e321be/packaging-24.2-py3-none-any.whl",
    "09abb1bccd265c01f4a3aa3f7a7db064b36514d2cba19a2f694fe6150451a759",
    65451,
)
WHEEL = WheelFile(
    "wheel-0.45.1-py3-none-any.whl",
    "https://files.pythonhosted.org/packages/0b/2c/87f3254fd8ffd29e4c02732eee68a83a1d3c346ae39bc6822dcbcb697f2b/wheel-0.45.1-py3-none-any.whl",
    "708e7481cc80179af0e556bbf0cc00b8444c7321e2700b8d8580231d13017248",
    72494,
)
NATIVE_LINUX = WheelFile("native-1.0-cp311-cp311-manylinux_2_17_x86_64.whl", "https://x/linux.whl", "a" * 64)
NATIVE_WIN = WheelFile("native-1.0-cp311-cp311-win_amd64.whl", "https://x/win.whl", "b" * 64)


def sample_lock() -> LayerLock:
    return LayerLock(
        label="//stacks:sci",
        env_name="framework-sci",
        python="3.11",
        platforms=(LINUX, MAC, WIN),
        lower_env_names=("cpython3_11",),
        chosen={
            "linux_x86_64": [("native", "1.0", NATIVE_LINUX), ("six", "1.16.0", SIX)],
            "macosx_arm64": [("packaging", "24.2", PACKAGING), ("six", "1.16.0", SIX)],
            "win_amd64": [("native", "1.0", NATIVE_WIN), ("six", "1.16.0", SIX), ("wheel", "0.45.1", WHEEL)],
        },
    )


def test_render_layer_lock_parses_and_describes_the_layer():
    data = tomllib.loads(render_layer_lock(sample_lock()))
    assert data["lock-version"] == "1.0"
    assert data["created-by"] == "rules_venvstacks"
    assert data["requires-python"] == "==3.11.*"
    assert data["environments"] == [LINUX.marker, MAC.marker, WIN.marker]
    assert data["tool"]["rules_venvstacks"] == {"layer": "//stacks:sci", "lower-layers": ["cpython3_11"]}
    packages = {(p["name"], p["version"]): p for p in data["packages"]}
    assert sorted(packages) == [("native", "1.0"), ("packaging", "24.2"), ("six", "1.16.0"), ("wheel", "0.45.1")]
    assert [p["name"] for p in data["packages"]] == ["native", "packaging", "six", "wheel"]
    six = packages["six", "1.16.0"]
    assert "marker" not in six  # on every platform
    assert six["wheels"] == [{"name": SIX.filename, "url": SIX.url, "size": SIX.size, "hashes": {"sha256": SIX.sha256}}]
    native = packages["native", "1.0"]
    assert [w["name"] for w in native["wheels"]] == sorted([NATIVE_LINUX.filename, NATIVE_WIN.filename])
    assert "size" not in native["wheels"][0]  # unknown size is left out, not written as 0


def test_markers_only_on_packages_not_on_every_platform():
    data = tomllib.loads(render_layer_lock(sample_lock()))
    where = {"native": {"linux_x86_64", "win_amd64"}, "packaging": {"macosx_arm64"}, "wheel": {"win_amd64"}}
    for package in data["packages"]:
        if package["name"] == "six":
            assert "marker" not in package
            continue
        marker = Marker(package["marker"])
        # evaluated on all six platforms, not only the layer's three
        truth = {name for name, p in PLATFORMS.items() if marker.evaluate(p.marker_environment("3.11"))}
        assert truth == where[package["name"]], package["name"]


def test_render_is_deterministic_and_ignores_input_order():
    lock = sample_lock()
    shuffled = LayerLock(
        lock.label,
        lock.env_name,
        lock.python,
        lock.platforms,
        lock.lower_env_names,
        {name: list(reversed(chosen)) for name, chosen in reversed(list(lock.chosen.items()))},
    )
    text = render_layer_lock(lock)
    assert render_layer_lock(lock) == text
    assert render_layer_lock(shuffled) == text
    assert text.startswith("# Lock of layer framework-sci (//stacks:sci)")
    assert text.endswith("\n")


def test_same_package_different_versions_per_platform():
    old = WheelFile("six-1.15.0-py2.py3-none-any.whl", "https://x/six-1.15.0-py2.py3-none-any.whl", "c" * 64, 10)
    lock = LayerLock("//s:l", "framework-l", "3.11", (LINUX, WIN), (), {
        "linux_x86_64": [("six", "1.16.0", SIX)],
        "win_amd64": [("six", "1.15.0", old)],
    })  # fmt: skip
    data = tomllib.loads(render_layer_lock(lock))
    by_version = {p["version"]: p for p in data["packages"]}
    assert Marker(by_version["1.16.0"]["marker"]).evaluate(LINUX.marker_environment("3.11"))
    assert not Marker(by_version["1.16.0"]["marker"]).evaluate(WIN.marker_environment("3.11"))
    assert Marker(by_version["1.15.0"]["marker"]).evaluate(WIN.marker_environment("3.11"))
    assert data["tool"]["rules_venvstacks"]["lower-layers"] == []


def test_strings_are_escaped():
    odd = WheelFile("odd-1.0-py3-none-any.whl", 'https://x/a"b\\c/odd-1.0-py3-none-any.whl', "d" * 64)
    lock = LayerLock('//s:"quoted"', "framework-ü", "3.11", (LINUX,), ("cpython3_11",), {
        "linux_x86_64": [("odd", "1.0", odd)]
    })  # fmt: skip
    data = tomllib.loads(render_layer_lock(lock))
    assert data["tool"]["rules_venvstacks"]["layer"] == '//s:"quoted"'
    assert data["packages"][0]["wheels"][0]["url"] == odd.url


def test_uv_installs_from_the_rendered_lock(uv, tmp_path):
    """uv reads the rendered file as a PEP 751 lock and applies its markers per platform."""
    lock = LayerLock("//s:l", "framework-l", "3.11", (LINUX, MAC, WIN), (), {
        "linux_x86_64": [("six", "1.16.0", SIX)],
        "macosx_arm64": [("packaging", "24.2", PACKAGING), ("six", "1.16.0", SIX)],
        "win_amd64": [("six", "1.16.0", SIX), ("wheel", "0.45.1", WHEEL)],
    })  # fmt: skip
    path = tmp_path / "pylock.framework-l.toml"
    path.write_text(render_layer_lock(lock), encoding="utf-8")
    expected = {LINUX: {"six"}, MAC: {"six", "packaging"}, WIN: {"six", "wheel"}}
    for target, names in expected.items():
        cmd = [
            str(uv), "pip", "install", "--dry-run", "-r", str(path), "--target", str(tmp_path / "target"),
            "--python", sys.executable, "--python-version", "3.11", "--no-config", "--no-python-downloads",
            "--python-platform", target.uv_python_platform(DeploymentTarget.parse("glibc@2.28", "13.0")),
        ]  # fmt: skip
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stderr
        installed = {line.split()[1].split("==")[0] for line in result.stderr.splitlines() if line.startswith(" + ")}
        assert installed == names, target.name


# --------------------------------------------------------------------------------------------------
# read_uv_lock


UV_OUTPUT = """\
lock-version = "1.0"
created-by = "uv"
requires-python = ">=3.11"

[[packages]]
name = "Six"
version = "1.16.0"

[[packages.wheels]]
url = "https://files.pythonhosted.org/packages/d9/5a/x/six-1.16.0-py2.py3-none-any.whl"
upload-time = 2021-05-05T14:18:17Z
size = 11053
hashes = { sha256 = "8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254" }

[[packages]]
name = "colorama"
version = "0.4.6"
marker = "sys_platform == 'win32'"

[[packages.wheels]]
name = "colorama-0.4.6-py2.py3-none-any.whl"
url = "https://x/download?id=1"
hashes = { sha256 = "4f1d9991f5acc0ca119f9d443620b77f9d6b33703e51011c16baf57afb285fc6" }

[[packages]]
name = "typing_extensions"
version = "4.12.2"
marker = "python_version < '3.12' and platform_machine == 'arm64'"
wheels = []
"""


def test_read_uv_lock_drops_packages_whose_marker_is_false(tmp_path):
    path = tmp_path / "pylock.layer.toml"
    path.write_text(UV_OUTPUT, encoding="utf-8")
    linux = read_uv_lock(path, LINUX, "3.11")
    assert [(p.name, p.version) for p in linux] == [("six", "1.16.0")]
    windows = read_uv_lock(path, WIN, "3.11")
    assert [p.name for p in windows] == ["six", "colorama"]
    assert [p.name for p in read_uv_lock(path, MAC, "3.11")] == ["six", "typing-extensions"]
    assert [p.name for p in read_uv_lock(path, MAC, "3.12")] == ["six"]


def test_read_uv_lock_wheel_fields(tmp_path):
    path = tmp_path / "pylock.layer.toml"
    path.write_text(UV_OUTPUT, encoding="utf-8")
    six, colorama = read_uv_lock(path, WIN, "3.11")
    assert six.name == "six"  # canonicalized
    assert six.wheels == (
        WheelFile(
            "six-1.16.0-py2.py3-none-any.whl",
            "https://files.pythonhosted.org/packages/d9/5a/x/six-1.16.0-py2.py3-none-any.whl",
            "8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254",
            11053,
        ),
    )
    # a `name` key wins over the URL's last component
    assert colorama.wheels[0].filename == "colorama-0.4.6-py2.py3-none-any.whl"
    assert colorama.wheels[0].size is None


def test_read_uv_lock_of_real_uv_output(uv, tmp_path):
    (tmp_path / "requirements.in").write_text("six==1.16.0\npackaging==24.2\n", encoding="utf-8")
    cmd = [
        str(uv), "pip", "compile", "requirements.in", "-o", "pylock.layer.toml", "--python-version", "3.11",
        "--python", sys.executable, "--python-platform", "x86_64-manylinux_2_28", "--no-build", "--quiet",
        "--no-header", "--no-config", "--no-python-downloads",
    ]  # fmt: skip
    result = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    packages = {p.name: p for p in read_uv_lock(tmp_path / "pylock.layer.toml", LINUX, "3.11")}
    assert sorted(packages) == ["packaging", "six"]
    assert packages["six"].wheels[0].filename == SIX.filename
    assert packages["six"].wheels[0].sha256 == SIX.sha256
    assert packages["packaging"].wheels[0] == PACKAGING


def test_render_uv_preferences_is_valid_pylock():
    """Names and versions only: uv takes preferences from them, and a wheel of a local directory has no URL."""
    text = render_uv_preferences([("six", "1.16.0"), ("packaging", "24.2")])
    data = tomllib.loads(text)
    assert data["lock-version"] == "1.0"
    assert data["packages"] == [{"name": "six", "version": "1.16.0"}, {"name": "packaging", "version": "24.2"}]


@pytest.mark.parametrize("empty", [[], ()])
def test_render_uv_preferences_empty(empty):
    assert tomllib.loads(render_uv_preferences(empty)) == {"lock-version": "1.0", "created-by": "rules_venvstacks"}


def test_read_uv_lock_decodes_percent_encoded_wheel_urls(tmp_path):
    """What uv 0.13 writes for a wheel with a local version from an HTTP index (checked against a real index)."""
    path = tmp_path / "pylock.layer.toml"
    path.write_text(
        'lock-version = "1.0"\n'
        "[[packages]]\n"
        'name = "six"\n'
        'version = "1.16.0+local"\n'
        "[[packages.wheels]]\n"
        'url = "http://127.0.0.1:8765/simple/six/six-1.16.0%2Blocal-py2.py3-none-any.whl"\n'
        'hashes = { sha256 = "8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254" }\n',
        encoding="utf-8",
    )
    (package,) = read_uv_lock(path, LINUX, "3.11")
    assert package.wheels[0].filename == "six-1.16.0+local-py2.py3-none-any.whl"
    assert package.wheels[0].tags()  # a valid wheel file name
