"""The platform class PlatformIO looks up by name: platform.json "name" = "horqoffline" -> HorqofflinePlatform.

No packages to install and no frameworks, so nothing beyond the defaults is needed.
"""
from platformio.public import PlatformBase


class HorqofflinePlatform(PlatformBase):
    pass
