"""Puts the site-packages of lower layers on sys.path (written by rules_venvstacks; imported from a .pth file).

Runs once per process, from the highest layer: Python caches the module, so the same .pth line in lower layers
is a no-op and the order stays this layer's, nearest lower layer first, the runtime last.
"""

import json
import os
import site


def _add_lower_layers() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "_venvstacks_layers.json"), encoding="utf-8") as config_file:
        config = json.load(config_file)
    for relative in config["site_packages"]:
        site.addsitedir(os.path.normpath(os.path.join(here, relative)))
    add_dll_directory = getattr(os, "add_dll_directory", None)  # Windows: DLLs of lower layers
    for relative in config["dll_directories"]:
        directory = os.path.normpath(os.path.join(here, relative))
        if add_dll_directory is not None and os.path.isdir(directory):
            add_dll_directory(directory)


_add_lower_layers()
