"""The whole pipeline in one call: model file -> lowered IR -> C project on disk."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import data, fit, importer, integer, passes, shapes
from .capi import InputQuantization
from .emit import ModelInfo, generate
from .errors import HorqError
from .integer import ACTIVATIONS, Lowering
from .importer import ImportedModel
from .ir import Graph
from .memory import MemoryPlan, plan_memory
from .project import staged_output
from .targets import Target


@dataclass(frozen=True)
class Generated:
    out_dir: Path
    graph: Graph
    plan: MemoryPlan


def calibration_inputs(model: ImportedModel, lowering: Lowering) -> np.ndarray:
    """The inputs whose ranges set the int8 scales: the user's, or the train split of the model's dataset."""
    given = lowering.calibration
    name = model.file.meta.get("dataset")
    if given is None and name:
        given, _ = data.load(name, "train")
    return integer.calibration_inputs(tuple(model.graph.input_shape), given, lowering.calibration_source,
                                      lowering.warn)


def lower_model(model: ImportedModel, lowering: Lowering = Lowering()) -> Graph:
    """The lowered graph, its shapes checked again (the passes are code too) and its size against every target."""
    graph = passes.lower(model.graph)
    shapes.check_graph(graph)
    if lowering.activations not in ACTIVATIONS:
        raise HorqError(f"unknown activations {lowering.activations!r}; choose one of: {', '.join(ACTIVATIONS)}")
    if lowering.activations == "float":
        fit.check_any_target(graph, plan_memory(graph))
        return graph
    # Sizes do not depend on the scales: a model no target holds is refused before calibration runs it.
    sized = integer.to_integer(graph, {}, residual=lowering.residual)
    fit.check_any_target(sized, plan_memory(sized))
    return integer.to_integer(graph, integer.calibrate(graph, calibration_inputs(model, lowering)),
                              residual=lowering.residual)


def generate_project(model: ImportedModel, graph: Graph, target: Target, out_dir: Path,
                     samples: np.ndarray, *, force: bool = False, board: str | None = None,
                     check_board: bool = True, name: str = "model",
                     input_quantization: InputQuantization = InputQuantization()) -> Generated:
    """Renders ``graph`` for ``target`` with ``samples`` as the harness's test inputs.

    Stops before writing anything if the firmware would not fit the board. ``name`` prefixes the
    model's C symbols and files; ``input_quantization`` is what its uint8 input stands for.
    """
    info = ModelInfo(model.file.path.name, model.file.sha256)
    chosen = target.board(board)
    if check_board:
        fit.check_board(graph, plan_memory(graph), target, chosen, len(samples))
    with staged_output(out_dir, force) as staging:
        plan = generate(graph, target, staging, info, samples, prefix=name, board=chosen,
                        input_quantization=input_quantization)
    return Generated(Path(out_dir), graph, plan)


def load_and_lower(path: str | Path, input_shape: tuple[int, ...] | None = None,
                   lowering: Lowering = Lowering()) -> tuple[ImportedModel, Graph]:
    model = importer.load(path, input_shape)
    return model, lower_model(model, lowering)
