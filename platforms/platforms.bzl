"""The target platforms rules_venvstacks builds layers for, by their venvstacks names: one struct each.

The helper tool's table (python/stacktool/platforms.py), the `platform` enum of the layer metadata schema and the
keys of the python-build-standalone table (rules/private/pbs_runtimes.json) are held equal to this one by
tests/e2e/test_platform_parity.py, which reads `//platforms:table`.
"""

def _platform(name, os, cpu):
    return struct(
        name = name,
        os = os,
        cpu = cpu,
        constraints = ["@platforms//os:" + os, "@platforms//cpu:" + cpu],
    )

# name -> struct(name, os, cpu, constraints). `os` and `cpu` are @platforms' names (arm64 is `aarch64` there).
TARGET_PLATFORMS = {p.name: p for p in [
    _platform("linux_aarch64", "linux", "aarch64"),
    _platform("linux_x86_64", "linux", "x86_64"),
    _platform("macosx_arm64", "macos", "aarch64"),
    _platform("macosx_x86_64", "macos", "x86_64"),
    _platform("win_amd64", "windows", "x86_64"),
    _platform("win_arm64", "windows", "aarch64"),
]}
