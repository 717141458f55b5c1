# The platform folder holds PlatformIO's build scripts, not tests: importing
# them for --doctest-modules fails (builder/main.py needs PlatformIO's SCons
# environment, and platform.py would clash with the standard `platform` module).
collect_ignore = ["platform"]
