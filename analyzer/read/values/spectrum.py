"""ONX104's energy estimate under --inspect-weights: one stored matrix read after the same
safety checks as the weight audit, then `lowrank.energy_kept`. The api hands `energy_reader`'s
function to the rules, so no rule opens the file."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from analyzer.core.onnxproto import ModelProto
from analyzer.read.external import DEFAULT_MAX_EXTERNAL_BYTES, opened_external
from analyzer.read.tensors import element_count
from analyzer.read.values.locate import locate
from analyzer.read.values.lowrank import MAX_ELEMENTS, energy_kept, read_matrix
from analyzer.read.values.scan import Skipped

Energy = Callable[[str, int], float | str]
"""(stored tensor, rank) -> share of its spectral energy kept at that rank, or why not."""


def energy_reader(
    path: str | os.PathLike[str], model: ModelProto, max_bytes: int = DEFAULT_MAX_EXTERNAL_BYTES
) -> Energy:
    """A function estimating the energy a rank keeps of one stored 2-D tensor of `path`."""
    model_path = Path(path)

    def energy(name: str, rank: int) -> float | str:
        tensor = next((t for t in locate(model_path) if t.name == name), None)
        if tensor is None:
            return f"tensor {name!r} is not stored in the file"
        if len(tensor.dims) != 2:
            return f"a {len(tensor.dims)}-D weight, not a matrix"
        count = element_count(tensor.dims)
        if count > MAX_ELEMENTS:
            return f"too big to estimate: {count:,} weights, over the {MAX_ELEMENTS:,} read whole"
        try:
            with opened_external(model, model_path, max_bytes) as files:
                fd = os.open(model_path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
                try:
                    matrix = read_matrix(fd, tensor, files, (tensor.dims[0], tensor.dims[1]))
                finally:
                    os.close(fd)
        except (Skipped, OSError, ValueError) as exc:
            return f"not read: {exc}"
        if isinstance(matrix, str):
            return matrix
        if not np.isfinite(matrix).all():
            return "the weight holds NaN or Inf values"
        try:
            return energy_kept(matrix, rank)
        except np.linalg.LinAlgError as exc:
            return f"the SVD failed: {exc}"

    return energy


__all__ = ["Energy", "energy_reader"]
