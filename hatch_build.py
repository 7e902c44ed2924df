"""Hatchling build hook: ship the start-up ``.pth`` file in every wheel and the configs in normal wheels.

A normal wheel gets the repository's ``configs/`` folder as ``anomalib_ea2d/configs/`` (read by
:mod:`anomalib_ea2d.config_files`). An editable wheel does not: the checkout's ``configs/`` is read in
place, so there is no second copy to go stale.
"""

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

PTH = "anomalib_ea2d_hook.pth"
CONFIGS = {"configs": "anomalib_ea2d/configs"}


class CustomBuildHook(BuildHookInterface):
    def initialize(self, version, build_data):
        if version == "editable":
            build_data["force_include_editable"][PTH] = PTH
        else:
            build_data["force_include"][PTH] = PTH
            build_data["force_include"].update(CONFIGS)
