"""The whole pipeline in one call: model file -> lowered IR -> C project on disk."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import fit, importer, passes, shapes
from .emit import ModelInfo, generate
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


def lower_model(model: ImportedModel) -> Graph:
    """The lowered graph, its shapes checked again (the passes are code too) and its size against every target."""
    graph = passes.lower(model.graph)
    shapes.check_graph(graph)
    fit.check_any_target(graph, plan_memory(graph))
    return graph


def generate_project(model: ImportedModel, graph: Graph, target: Target, out_dir: Path,
                     samples: np.ndarray, *, force: bool = False, board: str | None = None,
                     check_board: bool = True) -> Generated:
    """Renders ``graph`` for ``target`` with ``samples`` as the harness's test inputs.

    Stops before writing anything if the firmware would not fit the board.
    """
    info = ModelInfo(model.file.path.name, model.file.sha256)
    chosen = target.board(board)
    if check_board:
        fit.check_board(graph, plan_memory(graph), target, chosen, len(samples))
    with staged_output(out_dir, force) as staging:
        plan = generate(graph, target, staging, info, samples, board=chosen)
    return Generated(Path(out_dir), graph, plan)


def load_and_lower(path: str | Path, input_shape: tuple[int, ...] | None = None) -> tuple[ImportedModel, Graph]:
    model = importer.load(path, input_shape)
    return model, lower_model(model)
