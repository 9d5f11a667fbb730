"""Module extension of rules_venvstacks.

```starlark
venvstacks = use_extension("@rules_venvstacks//rules:extensions.bzl", "venvstacks")
venvstacks.lock_file(path = "//stacks:venvstacks_lock.json")  # written by `bazel run //stacks:lock`
```
"""

load("//rules/private:venvstacks_extension.bzl", _venvstacks = "venvstacks")

venvstacks = _venvstacks
