"""The target platforms rules_venvstacks builds layers for (venvstacks' platform names)."""

# name -> (constraint values). CPU names follow @platforms (arm64 is spelled aarch64 there).
TARGET_PLATFORMS = {
    "linux_aarch64": ["@platforms//os:linux", "@platforms//cpu:aarch64"],
    "linux_x86_64": ["@platforms//os:linux", "@platforms//cpu:x86_64"],
    "macosx_arm64": ["@platforms//os:macos", "@platforms//cpu:aarch64"],
    "macosx_x86_64": ["@platforms//os:macos", "@platforms//cpu:x86_64"],
    "win_amd64": ["@platforms//os:windows", "@platforms//cpu:x86_64"],
    "win_arm64": ["@platforms//os:windows", "@platforms//cpu:aarch64"],
}
