"""Helper tools run by rules_venvstacks' Bazel actions."""
