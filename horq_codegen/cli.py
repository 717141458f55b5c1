"""The ``horq-codegen`` command line.

    horq-codegen MODEL --target host -o OUT      generate a C project
    horq-codegen inspect MODEL [--passes]        per-layer table (and the IR after each pass)
    horq-codegen verify MODEL --target host      build, run and compare with PyTorch
    horq-codegen bench MODEL --target cortex-m7  executed instructions, flash and RAM vs float32
                                                 (--cycles: and llvm-mca's estimated cycles)
    horq-codegen report MODEL --target cortex-m7 -o report.html
                                                 one self-contained HTML page: the layer table, speed,
                                                 memory, quantization error by order, agreement

Every argument is checked before any work starts or any progress line is printed. Every
user-facing failure is one line ``horq-codegen: error: ...`` and exit status 2; torch's own
messages stay off the terminal unless ``--verbose``.
"""
from __future__ import annotations

import argparse
import logging
import sys
import warnings
from pathlib import Path

from . import __version__, diagnostics
from .capi import InputQuantization, check_name, parse_input_quantization
from .errors import HorqError
from .integer import ACTIVATIONS, RESIDUALS, Lowering
from .targets import known_targets, load_target

COMMANDS = ("generate", "inspect", "verify", "bench", "report")


def _shape(text: str) -> tuple[int, ...]:
    """``1,28,28`` or ``1x28x28``: one sample's shape, without the batch."""
    try:
        dims = tuple(int(d) for d in text.replace("x", ",").split(",") if d.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a shape: {text!r} (expected e.g. 1,28,28)") from None
    if not dims or any(d < 1 for d in dims):
        raise argparse.ArgumentTypeError(f"not a shape: {text!r} (expected e.g. 1,28,28)")
    return dims


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _c_name(text: str) -> str:
    try:
        return check_name(text)
    except HorqError as exc:
        raise argparse.ArgumentTypeError(str(exc).split(" ", 1)[1]) from None  # argparse names the option


def _input_quantization(text: str) -> InputQuantization:
    try:
        return parse_input_quantization(text)
    except HorqError as exc:
        raise argparse.ArgumentTypeError(str(exc).split(" ", 1)[1]) from None  # argparse names the option


def _target_name(text: str) -> str:
    if text not in known_targets():
        raise argparse.ArgumentTypeError(f"unknown target {text!r} (known: {', '.join(known_targets())})")
    return text


class _Parser(argparse.ArgumentParser):
    """Argument errors as one line, like every other refusal."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"horq-codegen: error: {message} (see {self.prog} --help)\n")


def _targets_epilog() -> str:
    lines = ["targets and their boards (* the default board):"]
    for name in known_targets():
        target = load_target(name)
        lines.append(f"  {name:<11} {target.description}")
        for key, board in sorted(target.boards.items()):
            mark = "*" if key == target.default_board else " "
            lines.append(f"      {mark} {key:<15} {board.name}: {board.flash_bytes:,} bytes flash, "
                         f"{board.ram_bytes:,} bytes RAM")
    return "\n".join(lines)


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Every default shown (where a help text does not say it already), the epilog's table kept as written."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default not in (None, False, argparse.SUPPRESS) and "default" not in text:
            text += " (default: %(default)s)"
        return text


def _common() -> argparse.ArgumentParser:
    parent = _Parser(add_help=False)
    parent.add_argument("--verbose", action="store_true", help="also show torch's own warnings and log lines")
    parent.add_argument("model", type=Path, help="a .pt2 from horq_codegen.export / torch.export, "
                                                   "or a torch.save'd nn.Sequential")
    parent.add_argument("--input-shape", type=_shape, default=None,
                        help="one sample's shape, e.g. 1,28,28 (needed for torch.save'd models)")
    parent.add_argument("--activations", choices=ACTIVATIONS, default=ACTIVATIONS[0],
                        help="tensors between layers: int8 (calibrated scales) or float32")
    parent.add_argument("--calibration", type=Path, default=None,
                        help="int8 only: inputs to calibrate the scales on, a .npy array of shape (N, *input shape) "
                             "(default: --inputs if given, else the train split of the model's dataset, else "
                             "seeded random inputs, with a warning)")
    parent.add_argument("--residual-stream", choices=RESIDUALS, default=RESIDUALS[0],
                        help="int8 only: the residual sums and PReLUs of networks with shortcuts (Bi-Real, "
                             "ReActNet) in float32 (default; the convolutions stay int8) or int8 (a smaller "
                             "arena, less accurate)")
    return parent


def _lowering(args: argparse.Namespace, user=None) -> Lowering:
    """The --activations and --calibration choices, the file read and checked before the model loads;
    without --calibration the user's --inputs (``user``) calibrate, if given."""
    residual = args.residual_stream
    if args.activations != "int8" and residual != RESIDUALS[0]:
        raise HorqError("--residual-stream chooses an int8 model's stream; it has no use with --activations float")
    if args.calibration is None:
        if user is not None and args.activations == "int8":
            return Lowering(args.activations, user.inputs, str(user.inputs_path), _progress, residual)
        return Lowering(args.activations, warn=_progress, residual=residual)
    if args.activations != "int8":
        raise HorqError("--calibration sets int8 scales; it has no use with --activations float")
    from .samples import read_user_data

    data = read_user_data(args.calibration, None)
    return Lowering(args.activations, data.inputs, str(args.calibration), _progress, residual)


def _user_data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--inputs", type=Path, default=None,
                        help="your own inputs: a .npy array of shape (N, *input shape) (default: the model's "
                             "dataset, else seeded random inputs)")
    parser.add_argument("--labels", type=Path, default=None, help="labels of --inputs: a .npy array of N integers")


def _parser() -> argparse.ArgumentParser:
    common = _common()
    parser = _Parser(prog="horq-codegen", description="HORQ networks to standalone C for ARM targets. "
                     "`horq-codegen MODEL ...` is `horq-codegen generate MODEL ...`.",
                     epilog=_targets_epilog(), formatter_class=_Formatter)
    parser.add_argument("--version", action="version", version=f"horq-codegen {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_text, description=help_text, parents=[common],
                              epilog=_targets_epilog(), formatter_class=_Formatter)

    gen = add("generate", "generate a C project (the default command)")
    gen.add_argument("--target", default="host", type=_target_name, help="what to generate for (the list below)")
    gen.add_argument("--board", default=None, help="a real board known to the target (default: the target's)")
    gen.add_argument("-o", "--output", type=Path, default=None, help="output folder (default: <model>-<target>)")
    gen.add_argument("--format", choices=("project", "library"), default="project",
                     help="project: a standalone firmware with its test harness; library: the model alone as a "
                          "PlatformIO library, CMake library and Zephyr module for your own firmware")
    gen.add_argument("--samples", type=_count, default=None,
                     help="test inputs embedded in the harness (default: 10, or all of --inputs)")
    _user_data_arguments(gen)
    gen.add_argument("--force", action="store_true",
                     help="write into a folder that holds files horq-codegen did not write, removing them (not .git)")
    gen.add_argument("--name", type=_c_name, default="model",
                     help="prefix of the model's C functions, macros and files: NAME_run, NAME_INPUT_SIZE, "
                          "include/NAME.h (a C identifier, not starting with horq_)")
    gen.add_argument("--input-quantization", type=_input_quantization, default=InputQuantization(),
                     metavar="SCALE,ZERO_POINT",
                     help="what a uint8 input q of NAME_run_u8_hwc stands for: SCALE * (q - ZERO_POINT) "
                          "(default: 1/255,0, pixels 0..255 as 0..1, the bundled MNIST model's inputs)")

    ins = add("inspect", "per-layer table: shapes, order, MACs, weight bytes")
    ins.add_argument("--passes", action="store_true", help="also print the IR after each pass")

    ver = add("verify", "build, run on test inputs, compare with PyTorch and the reference")
    ver.add_argument("--target", default=None, type=_target_name,
                     help="where to build and run (the list below; default: host, or the target of --board)")
    ver.add_argument("--samples", type=_count, default=None, help="how many inputs (default: 100, or all of --inputs)")
    _user_data_arguments(ver)
    ver.add_argument("--sanitize", action="store_true", help="host only: build with ASan and UBSan")
    ver.add_argument("--keep", type=Path, default=None, help="keep the generated project in this folder")
    ver.add_argument("--board", default=None,
                     help="verify the board image (UART output, no semihosting) of this board: run in the QEMU "
                          "machine of its MCU, or on the board with --port")
    ver.add_argument("--port", default=None,
                     help="with --board: read the flashed board's serial port (e.g. /dev/ttyACM0) instead of QEMU")
    ver.add_argument("--flash", action="store_true",
                     help="with --port: flash the board image through PlatformIO first (pio run -t upload)")

    ben = add("bench", "executed instructions per layer, flash and RAM, against a float32 build")
    ben.add_argument("--target", default="cortex-m7", type=_target_name, help="where to count (a QEMU target below)")
    ben.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    ben.add_argument("--cycles", action="store_true",
                     help="add estimated cycles per layer: llvm-mca-19's model of the target's core applied to the "
                          "executed basic blocks (a model's estimate, not a board's measurement)")

    rep = add("report", "one self-contained HTML page: the layer table, instructions per layer against float32, "
                        "memory (weights, the arena over time), quantization error by order, agreement with PyTorch")
    rep.add_argument("--target", default="cortex-m7", type=_target_name,
                     help="where to build, run and count (the list below; host: no instruction counts)")
    rep.add_argument("-o", "--output", type=Path, default=None, help="the HTML file (default: <model>-<target>.html)")
    rep.add_argument("--samples", type=_count, default=None,
                     help="inputs for the agreement and the quantization error (default: 100, or all of --inputs)")
    _user_data_arguments(rep)
    rep.add_argument("--cycles", action="store_true",
                     help="add llvm-mca's estimated cycles per layer (as bench --cycles; slower)")
    return parser


def _checked_output(path: Path | None) -> None:
    if path is not None and path.exists() and not path.is_dir():
        raise HorqError(f"{path} exists and is not a folder")


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _bench(args: argparse.Namespace) -> int:
    from .bench import bench, format_report

    if args.json is not None and args.json.is_dir():
        raise HorqError(f"--json {args.json} is a folder, not a file name")
    report = bench(args.model, args.target, input_shape=args.input_shape, progress=_progress,
                   lowering=_lowering(args), cycles=args.cycles)
    print(format_report(report))
    if args.json:
        args.json.write_text(report.to_json() + "\n")
    return 0


def _report(args: argparse.Namespace) -> int:
    from .html_report import build_report
    from .html_report.page import check_writable
    from .samples import read_user_data

    output = args.output or Path(f"{args.model.stem}-{args.target}.html")
    check_writable(output)  # before the model loads: an unwritable page is refused at once
    user = read_user_data(args.inputs, args.labels)
    data = build_report(args.model, args.target, output, samples=args.samples, user=user,
                        input_shape=args.input_shape, lowering=_lowering(args, user), cycles=args.cycles,
                        progress=_progress)
    verdict = "PASS" if data.verified.comparison.passed else "FAIL (see its agreement section)"
    print(f"wrote {output} (verify on {args.target}: {verdict})")
    return 0


def _generate(args: argparse.Namespace) -> int:
    from .pipeline import generate_project, load_and_lower
    from .samples import pick_samples, read_user_data

    target = load_target(args.target)
    target.board(args.board)  # an unknown board is an error before any work
    _checked_output(args.output)
    if args.format == "library" and args.samples is not None:
        raise HorqError("--samples sets the project's test inputs; a library (--format library) has none")
    user = read_user_data(args.inputs, args.labels)
    model, graph = load_and_lower(args.model, args.input_shape, _lowering(args, user))
    if args.format == "library":
        return _generate_library(args, target, model, graph)
    out = args.output or Path(f"{args.model.stem}-{target.name}")
    samples = pick_samples(model, args.samples, user, default_count=10)
    generated = generate_project(model, graph, target, out, samples.inputs, force=args.force, board=args.board,
                                 name=args.name, input_quantization=args.input_quantization)
    print(f"wrote {generated.out_dir}/ for {target.name} ({args.activations} activations, arena "
          f"{generated.plan.arena_bytes} bytes, "
          f"{samples.description}); build with: make -C {generated.out_dir}")
    return 0


def _generate_library(args: argparse.Namespace, target, model, graph) -> int:
    from .library import generate_library

    out = args.output or Path(f"{args.model.stem}-{target.name}-library")
    generated = generate_library(model, graph, target, out, force=args.force, board=args.board, prefix=args.name,
                                 input_quantization=args.input_quantization)
    print(f"wrote {generated.out_dir}/ as a library for {target.name} ({args.activations} activations, arena "
          f"{generated.plan.arena_bytes} bytes); use it from PlatformIO, CMake or Zephyr: "
          f"see {generated.out_dir}/README.md")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from . import importer, passes
    from .ir import format_graph
    from .pipeline import lower_model
    from .report import format_table, slow_layer_warnings

    lowering = _lowering(args)
    model = importer.load(args.model, args.input_shape)
    for name, graph in passes.lower_steps(model.graph):
        if args.passes:
            print(f"== after {name}\n{format_graph(graph)}\n")
    graph = lower_model(model, lowering)
    if args.passes and lowering.activations == "int8":
        print(f"== after to_integer\n{format_graph(graph)}\n")
    print(format_table(graph))
    for line in slow_layer_warnings(graph):
        print(line, file=sys.stderr)
    return 0


def _target_of_board(board: str) -> str:
    owners = [name for name in known_targets() if board in load_target(name).boards]
    if not owners:
        known = sorted({b for name in known_targets() for b in load_target(name).boards})
        raise HorqError(f"unknown board {board!r} (known: {', '.join(known)})")
    if len(owners) > 1:
        raise HorqError(f"board {board!r} belongs to several targets ({', '.join(owners)}): pass --target")
    return owners[0]


def _verify_board(args: argparse.Namespace) -> int:
    from .board.verify import BoardOptions, verify_on_board
    from .samples import read_user_data

    if args.sanitize:
        raise HorqError("--sanitize builds with the host's sanitizers; a board image has none")
    target = args.target or _target_of_board(args.board)
    user = read_user_data(args.inputs, args.labels)
    options = BoardOptions(args.board, args.port, args.flash)
    report = verify_on_board(args.model, target, options, args.samples, keep=args.keep, input_shape=args.input_shape,
                             user=user, progress=_progress, lowering=_lowering(args, user))
    print(report.summary())
    return 0 if report.comparison.passed else 1


def _verify(args: argparse.Namespace) -> int:
    from .samples import read_user_data
    from .verify import verify

    if args.board is not None:
        return _verify_board(args)
    if args.port is not None or args.flash:
        raise HorqError("--port and --flash read a board's image: name the board with --board")
    args.target = args.target or "host"
    if args.sanitize and load_target(args.target).kind != "host":
        raise HorqError(f"--sanitize builds with the host's sanitizers; target {args.target} has none")
    user = read_user_data(args.inputs, args.labels)
    report = verify(args.model, args.target, args.samples, sanitize=args.sanitize, keep=args.keep,
                    input_shape=args.input_shape, user=user, progress=_progress, lowering=_lowering(args, user))
    print(report.summary())
    return 0 if report.comparison.passed else 1


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = "--verbose" in argv  # accepted before the command too
    argv = [a for a in argv if a != "--verbose"]
    if argv and argv[0] not in COMMANDS and not argv[0].startswith("-"):
        argv.insert(0, "generate")  # `horq-codegen model.pt2 --target ...` generates
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, or an argument error already printed
        return int(exc.code or 0)
    args.verbose = verbose
    diagnostics.set_verbose(verbose)
    try:
        with warnings.catch_warnings():
            if not args.verbose:  # torch's warnings and log lines, wherever they arise
                warnings.simplefilter("ignore")
                logging.disable(logging.CRITICAL)
            return {"generate": _generate, "inspect": _inspect, "verify": _verify, "bench": _bench,
                    "report": _report}[args.command](args)
    except HorqError as exc:
        print(f"horq-codegen: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the file system refused something no module anticipated: still one line
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"horq-codegen: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("horq-codegen: interrupted", file=sys.stderr)
        return 130
    finally:
        logging.disable(logging.NOTSET)


if __name__ == "__main__":
    sys.exit(main())
