"""Write the model file that the code generator reads: a ``torch.export`` archive (.pt2).

HORQ layers export as single ``horq.conv2d`` / ``horq.linear`` nodes. A small JSON
member (``extra/horq.json``) records what the generator cannot see in the graph:
the format version and, optionally, the dataset whose test split ``verify`` uses.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch

from . import nn as _nn  # noqa: F401  (registers the custom ops before export)

META_MEMBER = "horq.json"
FORMAT_VERSION = 1


def export(model: torch.nn.Module, example_input: torch.Tensor, path: str | os.PathLike,
           *, dataset: str | None = None) -> Path:
    """Export ``model`` in eval mode; ``example_input`` (batch of 1) fixes the input shape.

    ``dataset`` names a dataset of :mod:`horq_codegen.data` whose test split
    ``horq-codegen verify`` then uses instead of random inputs.
    """
    if example_input.dim() < 2 or example_input.shape[0] != 1:
        raise ValueError(f"example_input must be a batch of one sample, got shape {tuple(example_input.shape)}")
    was_training = model.training
    model.eval()
    try:
        program = torch.export.export(model, (example_input,))
    finally:
        model.train(was_training)
    meta = {"format": FORMAT_VERSION, "dataset": dataset}
    path = Path(path)
    # Write into a folder beside the target under the final name (torch names the
    # archive's inner folder after the file), then rename: an interrupted export
    # never leaves half a file.
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=path.parent if str(path.parent) else "."))
    try:
        staged = staging / path.name
        torch.export.save(program, staged, extra_files={META_MEMBER: json.dumps(meta, sort_keys=True)})
        os.replace(staged, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path
