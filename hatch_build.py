"""Hatchling build hook: ship the start-up ``.pth`` file in normal and editable wheels."""

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

PTH = "anomalib_ea2d_hook.pth"


class CustomBuildHook(BuildHookInterface):
    def initialize(self, version, build_data):
        key = "force_include_editable" if version == "editable" else "force_include"
        build_data[key][PTH] = PTH
