"""The weight audit's per-tensor records: what `--inspect-weights` learned of each stored tensor.

They live in core because the Report carries them; the read stage fills them
(`read/values/stats.py`), the rules judge them, the reporters show them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class TensorStats:
    """What the weight audit knows of one stored tensor's values."""

    name: str
    dtype: str
    dims: tuple[int, ...]
    location: str
    """`embedded`, `typed` or the external data file's name."""
    elements: int
    nbytes: int
    """Bytes the values take as stored (packed types: whole bytes)."""
    minimum: float | None
    """Over the finite values; None when there are none (JSON has no NaN)."""
    maximum: float | None
    mean: float | None
    std: float | None
    zeros: int
    nans: int
    infs: int
    fp16_overflow: int
    """Finite values with |w| > 65,504: float16 makes them Inf."""
    fp16_underflow: int
    """Non-zero values with |w| < 2**-14: float16 makes them subnormal or zero."""
    digest: str
    """`xxh3-128:` + the hex XXH3-128 hash of the stored bytes (xxHash: 40 GB/s, sha256 1.1)."""
    zero_rows: int
    """Slices along axis 0 that are all zero (output channels of a Conv, Gemm with transB)."""
    zero_columns: int
    """Slices along the last axis that are all zero (output features of a MatMul weight)."""
    layers: tuple[str, ...] = ()
    """Layers (LayerTally.name) that use this tensor, filled in by the api."""
    duplicate_of: str = ""
    """An earlier tensor with byte-identical contents (same dtype and dims; compared bytes)."""
    transpose_of: str = ""
    """An earlier 2-D tensor whose transpose this one is, element for element."""

    @property
    def zero_fraction(self) -> float:
        return self.zeros / self.elements if self.elements else 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class UnreadTensor:
    """A stored tensor whose values could not be read, and why (also a report warning)."""

    name: str
    reason: str


__all__ = ["TensorStats", "UnreadTensor"]
