"""How much of a dense weight a rank-r factorisation keeps: the share of its spectral energy
(sum of squared singular values) in the r largest, estimated by randomised SVD.

ONX104 proposes W [in, out] ~ U [in, r] x V [r, out]; whether that keeps accuracy depends on the
weights. The share of energy kept is the usual first look (Eckart-Young: the best rank-r
approximation's relative squared error is one minus it). Randomised SVD (Halko, Martinsson and
Tropp, 2011) with one power iteration gets the top singular values of a 2,048 x 4,096
matrix in seconds; matrices over MAX_ELEMENTS are not read, and the report says so.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from analyzer.core import dtypes
from analyzer.read.tensors import element_count
from analyzer.read.values.decode import CHUNK, Array, from_bytes, read_windows
from analyzer.read.values.locate import Located
from analyzer.read.values.scan import stored_range, typed_values

MAX_ELEMENTS = 8 * 1024 * 1024
"""Largest matrix estimated (32 MB as float32, seconds on two cores): a 2,048 x 4,096 layer.
VGG-16's 102,760,448-weight fc6 would take over a minute at rank 880: it is reported as too
big rather than stalling the audit."""
OVERSAMPLE = 10
POWER_ITERATIONS = 1


def energy_kept(matrix: Array, rank: int, seed: int = 0) -> float:
    """Share of ||W||_F^2 in the `rank` largest singular values of a 2-D matrix (1.0 when the
    rank reaches the matrix's own)."""
    rows, cols = matrix.shape
    work = matrix.astype(np.float32, copy=False)
    total = float(np.einsum("ij,ij->", work, work, dtype=np.float64))
    if total == 0.0 or rank >= min(rows, cols):
        return 1.0
    if rows < cols:
        work = work.T
    sketch = min(rank + OVERSAMPLE, rows, cols)
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(work @ rng.standard_normal((work.shape[1], sketch), dtype=np.float32))
    for _ in range(POWER_ITERATIONS):  # sharpen the spectrum's decay
        basis, _ = np.linalg.qr(work.T @ basis)
        basis, _ = np.linalg.qr(work @ basis)
    small = (basis.T @ work).astype(np.float64)
    values = np.linalg.svd(small, compute_uv=False)
    return min(1.0, float(np.sum(values[:rank] ** 2)) / total)


def read_matrix(
    model_fd: int, tensor: Located, files: Mapping[str, int], shape: tuple[int, int]
) -> Array | str:
    """The tensor's values as a float32 [rows, cols] matrix, or why it was not read."""
    count = element_count(tensor.dims)
    if count != shape[0] * shape[1]:
        return f"{count:,} stored values for a {shape[0]:,} x {shape[1]:,} matrix"
    if count > MAX_ELEMENTS:
        return f"{count:,} weights, over the {MAX_ELEMENTS:,} read whole for this estimate"
    if not dtypes.is_float(tensor.data_type):
        return f"{dtypes.dtype_name(tensor.data_type)} weights (quantized): not estimated"
    if tensor.typed and tensor.raw is None:
        return typed_values(model_fd, tensor).astype(np.float32).reshape(shape)
    out = np.empty(count, dtype=np.float32)  # filled a window at a time: one copy in memory
    filled = 0
    fd, offset, length, _ = stored_range(tensor, model_fd, files)
    for data in read_windows(fd, offset, length, tensor.data_type, bytearray(CHUNK)):
        values = from_bytes(data, tensor.data_type)[: count - filled]
        out[filled : filled + values.size] = values
        filled += values.size
    if filled != count:
        return f"{filled:,} values stored where its dims need {count:,}"
    return out.reshape(shape)


__all__ = ["MAX_ELEMENTS", "energy_kept", "read_matrix"]
