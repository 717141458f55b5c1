"""The ``horq-codegen`` command line.

    horq-codegen MODEL --target host -o OUT      generate a C project
    horq-codegen inspect MODEL [--passes]        per-layer table (and the IR after each pass)
    horq-codegen verify MODEL --target host      build, run and compare with PyTorch
    horq-codegen bench MODEL --target cortex-m7  executed instructions, flash and RAM vs float32

Every user-facing failure is one line ``horq-codegen: error: ...`` and exit status 2.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __version__
from .errors import HorqError

COMMANDS = ("generate", "inspect", "verify", "bench")


def _shape(text: str) -> tuple[int, ...]:
    """``1,28,28`` or ``1x28x28``: one sample's shape, without the batch."""
    try:
        dims = tuple(int(d) for d in text.replace("x", ",").split(",") if d.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a shape: {text!r} (expected e.g. 1,28,28)") from None
    if not dims or any(d < 1 for d in dims):
        raise argparse.ArgumentTypeError(f"not a shape: {text!r} (expected e.g. 1,28,28)")
    return dims


def _model_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, help="a .pt2 from horq_codegen.export / torch.export, "
                                                   "or a torch.save'd nn.Sequential")
    parser.add_argument("--input-shape", type=_shape, default=None,
                        help="one sample's shape, e.g. 1,28,28 (needed for torch.save'd models)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="horq-codegen", description="HORQ networks to standalone C for ARM targets.")
    parser.add_argument("--version", action="version", version=f"horq-codegen {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="generate a C project (the default command)")
    _model_argument(gen)
    gen.add_argument("--target", default="host")
    gen.add_argument("--board", default=None, help="a real board known to the target (default: the target's)")
    gen.add_argument("-o", "--output", type=Path, default=None, help="output folder (default: <model>-<target>)")
    gen.add_argument("--samples", type=int, default=10, help="test inputs embedded in the harness")
    gen.add_argument("--force", action="store_true", help="replace an output folder that holds other files")

    ins = sub.add_parser("inspect", help="per-layer table: shapes, order, MACs, weight bytes")
    _model_argument(ins)
    ins.add_argument("--passes", action="store_true", help="also print the IR after each pass")

    ver = sub.add_parser("verify", help="build, run on test inputs, compare with PyTorch and the reference")
    _model_argument(ver)
    ver.add_argument("--target", default="host")
    ver.add_argument("--samples", type=int, default=100)
    ver.add_argument("--sanitize", action="store_true", help="host only: build with ASan and UBSan")
    ver.add_argument("--keep", type=Path, default=None, help="keep the generated project in this folder")

    ben = sub.add_parser("bench", help="executed instructions per layer, flash and RAM, against a float32 build")
    _model_argument(ben)
    ben.add_argument("--target", default="cortex-m7")
    ben.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    return parser


def _bench(args: argparse.Namespace) -> int:
    from .bench import bench, format_report

    print(f"benchmarking {args.model} on {args.target} (two builds under QEMU) ...", file=sys.stderr, flush=True)
    report = bench(args.model, args.target, input_shape=args.input_shape)
    print(format_report(report))
    if args.json:
        args.json.write_text(report.to_json() + "\n")
    return 0


def _generate(args: argparse.Namespace) -> int:
    from .pipeline import generate_project, load_and_lower
    from .targets import load_target
    from .verify import pick_samples

    target = load_target(args.target)
    target.board(args.board)  # an unknown board is an error before any work
    model, graph = load_and_lower(args.model, args.input_shape)
    out = args.output or Path(f"{args.model.stem}-{target.name}")
    generated = generate_project(model, graph, target, out, pick_samples(model, args.samples).inputs,
                                 force=args.force, board=args.board)
    print(f"wrote {generated.out_dir}/ for {target.name} (arena {generated.plan.arena_bytes} bytes); "
          f"build with: make -C {generated.out_dir}")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from . import importer, passes
    from .ir import format_graph
    from .report import format_table

    model = importer.load(args.model, args.input_shape)
    graph = None
    for name, graph in passes.lower_steps(model.graph):
        if args.passes:
            print(f"== after {name}\n{format_graph(graph)}\n")
    print(format_table(graph))
    return 0


def _verify(args: argparse.Namespace) -> int:
    from .verify import verify

    print(f"verifying {args.model} on {args.target} ...", file=sys.stderr, flush=True)
    report = verify(args.model, args.target, args.samples, sanitize=args.sanitize, keep=args.keep,
                    input_shape=args.input_shape)
    print(report.summary())
    return 0 if report.comparison.passed else 1


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] not in COMMANDS and not argv[0].startswith("-"):
        argv.insert(0, "generate")  # `horq-codegen model.pt2 --target ...` generates
    args = _parser().parse_args(argv)
    try:
        return {"generate": _generate, "inspect": _inspect, "verify": _verify, "bench": _bench}[args.command](args)
    except HorqError as exc:
        print(f"horq-codegen: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("horq-codegen: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
