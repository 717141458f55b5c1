"""The HORQ paper's MNIST experiments on the offline MNIST subset, as one command (``make paper``).

    python examples/paper/run.py                  # everything: about an hour on 2 cores
    python examples/paper/run.py --jobs 1         # one run at a time
    python examples/paper/run.py --tiny           # a few seconds: the pipeline, not the science

The bundled network (``examples/mnist/model.py``) is trained as float, order 1 (XNOR-Net's input
binarization) and HORQ orders 2, 3 and 4, each at ``patch`` and ``static`` granularity, with 3 seeds,
at full width and at a quarter of the width (8/16/16 channels), where a binary network has less to
spare and the methods separate. Every run is the bundled recipe (``examples/mnist/model.py``'s
``RECIPE``) and is cached as one JSON file under ``--out``/runs: a second call trains only what is
missing, so an interrupted run resumes where it stopped.

Outputs under ``--out`` (default ``out/paper``):
- ``results.json``: every run and the aggregated rows;
- ``results.md``: the accuracy table (mean +- standard deviation over seeds) beside the paper's
  figures, and the input-quantization error by order;
- ``report.html``: the same with plots (one self-contained page).

Each run is single-threaded, so a run gives the same model whatever ``--jobs`` is; ``--jobs`` runs
that many at once in worker processes.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import math
import multiprocessing
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
MNIST = ROOT / "examples" / "mnist"
if str(ROOT) not in sys.path:  # horq_codegen without an install
    sys.path.insert(0, str(ROOT))


def _load(path: Path, name: str):
    """A script beside us loaded from its path under a name of its own: a plain ``import model`` would
    take whichever example's ``model`` the process imported first (every example has one)."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def bundled_model_module():
    """``examples/mnist/model.py``: the network and its recipe."""
    return _load(MNIST / "model.py", "horq_paper_mnist_model")

ORDERS = (None, 1, 2, 3, 4)  # None: the float network
GRANULARITIES = ("patch", "static")
WIDTHS = {"full": 1.0, "narrow": 0.25}
ERROR_ORDERS = (1, 2, 3, 4)

# The paper's MNIST test errors (Li et al., ICCV 2017, as our issue quotes them), in per cent.
PAPER_ERRORS = {1: 1.96, 2: 1.25}


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How every network is trained: the bundled example's ``RECIPE`` (``examples/mnist/model.py``)."""
    epochs: int
    batch_size: int
    lr: float
    shift: int
    samples: int | None = None  # None: the whole subset (4,000 train, 1,000 test)


@dataclasses.dataclass(frozen=True)
class RunSpec:
    width: str
    order: int | None
    granularity: str
    seed: int

    @property
    def method(self) -> str:
        return "float" if self.order is None else ("XNOR (order 1)" if self.order == 1 else f"HORQ-{self.order}")

    def key(self, recipe: Recipe) -> str:
        """The cache file's name: every setting that changes the result."""
        order = "float" if self.order is None else f"o{self.order}"
        samples = "" if recipe.samples is None else f"-n{recipe.samples}"
        return (f"{self.width}-{order}-{self.granularity}-s{self.seed}-e{recipe.epochs}-b{recipe.batch_size}"
                f"-lr{recipe.lr:g}-sh{recipe.shift}{samples}")


def plan(widths: list[str], seeds: int, orders: tuple = ORDERS) -> list[RunSpec]:
    """Every run: float once per width and seed (granularity does not apply), each order at each
    granularity."""
    runs = []
    for width in widths:
        for order in orders:
            for granularity in (("-",) if order is None else GRANULARITIES):
                for seed in range(seeds):
                    runs.append(RunSpec(width, order, granularity, seed))
    return runs


def train_one(spec: RunSpec, recipe: Recipe) -> dict:
    """Trains one network single-threaded and measures it: test accuracy and, for every HORQ layer,
    the relative input-quantization error of orders 1-4 on the test digits."""
    import torch

    from horq_codegen.nn.training import evaluate, fit, mnist_tensors, random_shift, seed_everything

    torch.set_num_threads(1)
    seed_everything(spec.seed)
    x_train, y_train, x_test, y_test = mnist_tensors(recipe.samples)
    granularity = "patch" if spec.order is None else spec.granularity
    model = bundled_model_module().build_model(spec.order, granularity, WIDTHS[spec.width])
    seconds = fit(model, x_train, y_train, epochs=recipe.epochs, batch_size=recipe.batch_size, lr=recipe.lr,
                  seed=spec.seed, progress=False, log_epochs=False,
                  augment=lambda batch, generator: random_shift(batch, recipe.shift, generator))
    accuracy = evaluate(model, x_test, y_test)
    return {"spec": dataclasses.asdict(spec), "accuracy": accuracy, "train_seconds": seconds,
            "input_errors": input_errors(model, x_test, spec.granularity if spec.order else "patch")}


def input_errors(model, images, granularity: str) -> dict[str, list[float]]:
    """For each HORQ layer (in a float network too: the same layers with quantization off), the
    relative error ||x - x_hat|| / ||x|| of quantizing its inputs on ``images`` at orders 1-4.

    Groups follow ``granularity``: ``patch`` quantizes each patch (zero padding included) or each
    sample's input vector; ``static`` uses one set of betas over the whole batch, the betas a static
    layer learns in training.
    """
    import torch
    import torch.nn.functional as F

    from horq_codegen.nn import HORQConv2d, HORQLinear
    from horq_codegen.nn.quantizers import residual_quantize

    captured: dict[str, torch.Tensor] = {}
    hooks = []
    for name, module in model.named_modules():
        if isinstance(module, (HORQConv2d, HORQLinear)):
            label = (f"{name}: conv {module.in_channels}->{module.out_channels}" if isinstance(module, HORQConv2d)
                     else f"{name}: fc {module.in_features}->{module.out_features}")
            hooks.append(module.register_forward_pre_hook(
                lambda module, args, label=label: captured.__setitem__(label, (module, args[0].detach()))))
    model.eval()
    with torch.no_grad():
        model(images)
    for hook in hooks:
        hook.remove()

    errors = {}
    for label, (module, x) in captured.items():
        if isinstance(module, HORQConv2d):
            ph, pw = (int(p) for p in module.padding)
            x = F.pad(x, (pw, pw, ph, ph))
            if granularity == "patch":
                x = F.unfold(x, module.kernel_size, stride=module.stride)  # (N, C*kh*kw, L): a group a column
        dims = tuple(range(x.dim())) if granularity == "static" else (1,)
        norm = float(torch.linalg.vector_norm(x))
        errors[label] = [float(torch.linalg.vector_norm(x - residual_quantize(x, order, dims)[0])) / norm
                        for order in ERROR_ORDERS]
    return errors


def _write_atomically(path: Path, text: str) -> None:
    """Nothing half-written: a run killed while writing leaves no cache file that looks finished."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as tmp:
        tmp.write(text)
    os.replace(tmp.name, path)


def run_all(runs: list[RunSpec], recipe: Recipe, out: Path, jobs: int, progress: bool = True) -> list[dict]:
    """Trains what the cache under ``out/runs`` lacks; returns every run's result in ``runs``' order."""
    cache = out / "runs"
    results: dict[RunSpec, dict] = {}
    todo = []
    for spec in runs:
        path = cache / f"{spec.key(recipe)}.json"
        if path.exists():
            results[spec] = json.loads(path.read_text())
        else:
            todo.append(spec)
    print(f"{len(runs)} runs: {len(runs) - len(todo)} cached in {cache}, {len(todo)} to train "
          f"({jobs} at a time)", flush=True)
    bar = _progress_bar(len(todo)) if progress and todo else None
    start = time.perf_counter()

    def finished(spec: RunSpec, result: dict) -> None:
        _write_atomically(cache / f"{spec.key(recipe)}.json", json.dumps(result, indent=1) + "\n")
        results[spec] = result
        label = f"{spec.width} {spec.method} {spec.granularity} seed {spec.seed}: {100 * result['accuracy']:.2f}%"
        if bar is not None:
            bar.set_postfix_str(label)
            bar.update()
        else:
            print(f"[{len(results)}/{len(runs)} {time.perf_counter() - start:.0f} s] {label}", flush=True)

    if jobs <= 1:
        for spec in todo:
            finished(spec, train_one(spec, recipe))
    elif todo:
        with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(train_one, spec, recipe): spec for spec in todo}
            for future in as_completed(futures):
                finished(futures[future], future.result())
    if bar is not None:
        bar.close()
    return [results[spec] for spec in runs]


def _progress_bar(total: int):
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return None
    return tqdm(total=total, unit="run", desc="training")


def _mean_std(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return mean, std


def aggregate(results: list[dict]) -> list[dict]:
    """One row per width, order and granularity: accuracy and error over the seeds, and the input
    errors by order averaged over seeds."""
    groups: dict[tuple, list[dict]] = {}
    for result in results:
        spec = result["spec"]
        groups.setdefault((spec["width"], spec["order"], spec["granularity"]), []).append(result)
    rows = []
    for (width, order, granularity), members in groups.items():
        accuracy, accuracy_std = _mean_std([100 * m["accuracy"] for m in members])
        layers = members[0]["input_errors"].keys()
        errors = {layer: [sum(m["input_errors"][layer][i] for m in members) / len(members)
                          for i in range(len(ERROR_ORDERS))] for layer in layers}
        rows.append({"width": width, "order": order, "granularity": granularity, "seeds": len(members),
                     "accuracy": accuracy, "accuracy_std": accuracy_std, "error": 100 - accuracy,
                     "paper_error": PAPER_ERRORS.get(order), "input_errors": errors,
                     "train_seconds": sum(m["train_seconds"] for m in members) / len(members)})
    return rows


def _method(order: int | None) -> str:
    return RunSpec("", order, "", 0).method


def markdown(rows: list[dict], recipe: Recipe) -> str:
    """The accuracy table and the error-by-order table, as the README shows them."""
    seeds = max(row["seeds"] for row in rows)
    lines = [f"Test accuracy on the 1,000-digit test split, mean +- standard deviation over {seeds} seeds "
             f"({recipe.epochs} epochs, batch {recipe.batch_size}, Adam {recipe.lr:g} with cosine schedule, "
             f"shift {recipe.shift}); paper: Li et al., ICCV 2017, MNIST test error.", "",
             "| width | method | granularity | accuracy % | error % | paper error % |",
             "|---|---|---|---|---|---|"]
    for row in rows:
        paper = f"{row['paper_error']:.2f}" if row["paper_error"] is not None else "-"
        lines.append(f"| {row['width']} | {_method(row['order'])} | {row['granularity']} | "
                     f"{row['accuracy']:.2f} +- {row['accuracy_std']:.2f} | {row['error']:.2f} | {paper} |")
    lines += ["", "Relative input-quantization error ||x - x_hat|| / ||x|| of each HORQ layer's inputs on the "
              "test digits, by order (mean over seeds; the inputs of the network trained at that row's "
              "order and granularity):", "",
              "| width | network | granularity | layer | " + " | ".join(f"K={k}" for k in ERROR_ORDERS) + " |",
              "|---|---|---|---|" + "---|" * len(ERROR_ORDERS)]
    for row in rows:
        for layer, errors in row["input_errors"].items():
            lines.append(f"| {row['width']} | {_method(row['order'])} | {row['granularity']} | {layer} | "
                         + " | ".join(f"{e:.3f}" for e in errors) + " |")
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=ROOT / "out" / "paper", help="results and cache (default out/paper)")
    p.add_argument("--jobs", type=int, default=2, help="runs trained at once, one thread each (default 2)")
    p.add_argument("--seeds", type=int, default=3, help="seeds per configuration (default 3)")
    p.add_argument("--widths", nargs="+", choices=sorted(WIDTHS), default=["full", "narrow"],
                   help="network widths (default: full narrow)")
    p.add_argument("--epochs", type=int, default=None, help="epochs per run (default: the bundled recipe's)")
    p.add_argument("--tiny", action="store_true",
                   help="a check of the pipeline: 256 samples, 1 epoch, 1 seed, orders float/1/2, narrow only")
    p.add_argument("--no-progress", action="store_true", help="a line per run instead of a progress bar")
    args = p.parse_args(argv)
    if args.jobs < 1 or args.seeds < 1 or (args.epochs is not None and args.epochs < 1):
        p.error("--jobs, --seeds and --epochs must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    orders = ORDERS
    bundled = bundled_model_module().RECIPE
    recipe = Recipe(epochs=args.epochs or bundled["epochs"], batch_size=bundled["batch_size"],
                    lr=bundled["lr"], shift=bundled["shift"])
    if args.tiny:
        recipe = dataclasses.replace(recipe, epochs=1, samples=256)
        args.seeds, args.widths, orders = 1, ["narrow"], (None, 1, 2)
    runs = plan(args.widths, args.seeds, orders)
    results = run_all(runs, recipe, args.out, args.jobs, progress=not args.no_progress)
    rows = aggregate(results)
    table = markdown(rows, recipe)
    _write_atomically(args.out / "results.json", json.dumps({"recipe": dataclasses.asdict(recipe), "runs": results,
                                                            "rows": rows}, indent=1) + "\n")
    _write_atomically(args.out / "results.md", table)
    _load(HERE / "page.py", "horq_paper_page").write_page(rows, table, args.out / "report.html")
    print(table)
    print(f"wrote {args.out / 'results.md'}, {args.out / 'results.json'} and {args.out / 'report.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
