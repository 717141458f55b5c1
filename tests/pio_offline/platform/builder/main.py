"""SCons build script of the offline test platform (PlatformIO runs it as $BUILD_SCRIPT).

A trimmed copy of what platformio/platform-ststm32 does for a project without a
framework (builder/main.py + builder/frameworks/_bare.py), except that the
compiler is the system's arm-none-eabi-gcc (Debian's gcc-arm-none-eabi +
libnewlib-arm-none-eabi) instead of the toolchain-gccarmnoneeabi package, and
the FPU flags are added per core (see CORE_FLAGS).

Everything project-specific is left to PlatformIO's own builder, which runs
before and after this script: build_flags/build_unflags, board_build.ldscript
(-T), the extra_scripts (pre: before this file, so only Append here, never
Replace flags), and the Library Dependency Finder, which compiles each folder
under lib/ into its own archive. env.BuildProgram() ties them together and
produces $BUILD_DIR/firmware.elf.
"""
import os
from os.path import join

from SCons.Script import COMMAND_LINE_TARGETS, AlwaysBuild, Builder, Default, DefaultEnvironment

env = DefaultEnvironment()
board = env.BoardConfig()

# -mcpu comes from the board json (build.cpu); the FPU/ABI flags per core
# (ST's boards have the single-precision FPv4 on M4, the double-precision
# FPv5 on F7/H7 M7s, the single-precision FPv5 on U5 M33s, no FPU on F1 M3s).
CORE_FLAGS = {
    "cortex-m3": [],
    "cortex-m4": ["-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"],
    "cortex-m7": ["-mfpu=fpv5-d16", "-mfloat-abi=hard"],
    "cortex-m33": ["-mfpu=fpv5-sp-d16", "-mfloat-abi=hard"],
}
cpu = board.get("build.cpu")
if cpu not in CORE_FLAGS:
    env.Exit("Error: the offline test platform does not know the core %r of board %r"
             % (cpu, env.subst("$BOARD")))
MACHINE_FLAGS = ["-mcpu=%s" % cpu, "-mthumb"] + CORE_FLAGS[cpu]

env.Replace(
    AR="arm-none-eabi-ar",
    AS="arm-none-eabi-as",
    CC="arm-none-eabi-gcc",
    CXX="arm-none-eabi-g++",
    GDB="arm-none-eabi-gdb",
    OBJCOPY="arm-none-eabi-objcopy",
    RANLIB="arm-none-eabi-ranlib",
    SIZETOOL="arm-none-eabi-size",
    ARFLAGS=["rc"],
    # Sections that take flash / RAM, for PlatformIO's "RAM: / Flash:" report
    # (checkprogsize, against upload.maximum_* of the board json).
    SIZEPROGREGEXP=r"^(?:\.isr_vector|\.text|\.data|\.rodata|\.ARM\.extab|\.ARM\.exidx|\.init_array)\s+(\d+).*",
    SIZEDATAREGEXP=r"^(?:\.data|\.bss|\.noinit)\s+(\d+).*",
    SIZECHECKCMD="$SIZETOOL -A -d $SOURCES",
    SIZEPRINTCMD="$SIZETOOL -B -d $SOURCES",
    PROGSUFFIX=".elf",
)

# An extra_script may have named the program already.
if env.get("PROGNAME", "program") == "program":
    env.Replace(PROGNAME="firmware")

# ststm32's bare-metal defaults (its -Os is what a project's build_unflags removes).
env.Append(
    ASFLAGS=["-x", "assembler-with-cpp"] + MACHINE_FLAGS,
    CCFLAGS=["-Os", "-ffunction-sections", "-fdata-sections", "-Wall"] + MACHINE_FLAGS,
    CXXFLAGS=["-fno-rtti", "-fno-exceptions"],
    CPPDEFINES=[("F_CPU", "$BOARD_F_CPU")],
    LINKFLAGS=["-Os", "-Wl,--gc-sections"] + MACHINE_FLAGS,
    LIBS=["c", "gcc", "m"],
    BUILDERS=dict(
        ElfToBin=Builder(
            action=env.VerboseAction("$OBJCOPY -O binary $SOURCES $TARGET", "Building $TARGET"),
            suffix=".bin",
        )
    ),
)

# As ststm32 does: with the "nobuild" target, upload what $BUILD_DIR already holds.
if "nobuild" in COMMAND_LINE_TARGETS:
    target_elf = join("$BUILD_DIR", "${PROGNAME}.elf")
    target_bin = join("$BUILD_DIR", "${PROGNAME}.bin")
else:
    target_elf = env.BuildProgram()
    target_bin = env.ElfToBin(join("$BUILD_DIR", "${PROGNAME}"), target_elf)
env.Alias("buildprog", target_bin, target_bin)
AlwaysBuild(env.Alias("nobuild", target_bin))

target_size = env.Alias("size", target_elf, env.VerboseAction("$SIZEPRINTCMD", "Calculating size $SOURCE"))
AlwaysBuild(target_size)

# The "programmer" is whatever command HORQ_TEST_PROGRAMMER names, given the image to write (a test's
# emulated board: tests/test_board_image.py starts QEMU on it); without one, uploading fails.
programmer = os.environ.get("HORQ_TEST_PROGRAMMER")
upload_command = ('%s "$SOURCE"' % programmer) if programmer else "echo 'the offline test platform has no programmer' && false"
AlwaysBuild(env.Alias("upload", target_bin, env.VerboseAction(upload_command, "Uploading $SOURCE")))

Default([target_bin, target_size])
