"""Per-tensor statistics, accumulated chunk by chunk so no tensor is ever held whole.

Mean and spread merge per chunk (Chan et al.'s parallel variance), so the result does not
depend on the chunk size beyond float rounding. The content hash is xxHash's XXH3-128 over the
stored bytes (about 40 GB/s here, where sha256 runs at 1.1 GB/s and was a third of the scan):
it only nominates duplicates, which `relate` then compares byte by byte.
"""

from __future__ import annotations

import math

import numpy as np
import xxhash

from analyzer.core.tensorstats import TensorStats
from analyzer.read.values.decode import Array

FP16_MAX = 65504.0
DIGEST_PREFIX = "xxh3-128:"
"""Names the hash in the digest itself, so a digest from another algorithm never compares equal."""
FP16_MIN_NORMAL = 2.0**-14


class Accumulator:
    """Running statistics of one tensor; `add` each chunk in order, then `result`."""

    def __init__(self, dims: tuple[int, ...]) -> None:
        self.dims = dims
        self.count = 0
        self.finite = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.minimum = math.inf
        self.maximum = -math.inf
        self.zeros = self.nans = self.infs = self.over = self.under = 0
        self.hash = xxhash.xxh3_128()
        matrix = len(dims) >= 2 and all(d > 0 for d in dims)
        self.row_size = math.prod(dims[1:]) if matrix else 0
        self.rows = np.zeros(dims[0] if matrix else 0, dtype=bool)
        self.columns = np.zeros(dims[-1] if matrix else 0, dtype=bool)
        """True where a non-zero value was seen."""

    def add_bytes(self, data: bytes | memoryview) -> None:
        self.hash.update(data)

    def add(self, values: Array) -> None:
        """Fold one chunk in; the common case (all finite) costs a few fast passes."""
        flat = values.reshape(-1)
        if flat.dtype.kind not in "fiub":
            flat = flat.astype(np.float32)
        if flat.size == 0:
            return
        low, high = flat.min(), flat.max()
        good = flat
        if flat.dtype.kind == "f" and not (np.isfinite(low) and np.isfinite(high)):
            nans = int(np.count_nonzero(np.isnan(flat)))
            finite = np.isfinite(flat)
            self.nans += nans
            self.infs += int(flat.size - np.count_nonzero(finite)) - nans
            good = flat[finite]
            low, high = (good.min(), good.max()) if good.size else (low, high)
        if flat.dtype.kind == "f":
            zeros = self._small(good, float(low), float(high))
        else:
            zeros = int(flat.size - np.count_nonzero(flat))
        self.zeros += zeros
        if good.size:
            self._moments(good, float(low), float(high))
        if self.row_size:
            self._mark(flat, zeros)
        self.count += flat.size

    def _small(self, good: Array, low: float, high: float) -> int:
        """Count fp16 overflow and underflow; returns the zeros among `good`.

        Zeros are found among the values below float16's smallest normal (one pass over the
        chunk and a look at the few small ones) rather than by a count over every value.
        """
        if max(-low, high) > FP16_MAX:
            self.over += int(np.count_nonzero(np.abs(good) > FP16_MAX))
        if low >= FP16_MIN_NORMAL or high <= -FP16_MIN_NORMAL:
            return 0  # every value is at least the smallest normal away from zero
        if low == high == 0:
            return int(good.size)  # all zeros (pruned, or never-written sparse file holes)
        tiny = good[np.abs(good) < FP16_MIN_NORMAL]
        zeros = int(tiny.size - np.count_nonzero(tiny))
        self.under += int(tiny.size) - zeros
        return zeros

    def _mark(self, flat: Array, zeros: int) -> None:
        """Note which rows and columns hold a non-zero value (NaN and Inf count as non-zero)."""
        start, end, width = self.count, self.count + flat.size, self.dims[-1]
        if zeros == flat.size:
            return  # nothing non-zero to mark
        if zeros == 0:
            self.rows[start // self.row_size : (end - 1) // self.row_size + 1] = True
            if flat.size >= width:
                self.columns[:] = True
            else:
                first, last = start % width, (end - 1) % width
                if first <= last:
                    self.columns[first : last + 1] = True
                else:
                    self.columns[first:] = True
                    self.columns[: last + 1] = True
            return
        where = start + np.flatnonzero(flat)
        self.rows[where // self.row_size] = True
        self.columns[where % width] = True

    def _moments(self, good: Array, low: float, high: float) -> None:
        self.minimum = min(self.minimum, low)
        self.maximum = max(self.maximum, high)
        if low == high:  # a constant chunk (all zeros, most often): nothing to sum
            mean, m2 = low, 0.0
        else:
            mean, m2 = self._spread(good, low, high)
        seen = self.finite
        total = seen + good.size
        delta = mean - self.mean
        self.mean += delta * good.size / total
        self.m2 += m2 + delta * delta * seen * good.size / total
        self.finite = total

    @staticmethod
    def _spread(good: Array, low: float, high: float) -> tuple[float, float]:
        """(mean, sum of squared deviations) of one chunk."""
        mean = float(np.add.reduce(good, dtype=np.float64)) / good.size
        small = max(-low, high) < 1e15  # squares summed in float32 cannot overflow
        if good.dtype == np.float32 and small:  # float32 precision is enough for a report
            square = float(np.dot(good, good)) / good.size
            if mean * mean < 0.01 * square:  # no cancellation: sum of squares minus mean^2
                return mean, max(0.0, square - mean * mean) * good.size
            centred = good - good.dtype.type(mean)
            return mean, float(np.dot(centred, centred))
        centred = good.astype(np.float64) - mean
        return mean, float(np.dot(centred, centred))

    def result(self, *, name: str, dtype: str, location: str, nbytes: int) -> TensorStats:
        finite = self.finite
        return TensorStats(
            name=name,
            dtype=dtype,
            dims=self.dims,
            location=location,
            elements=self.count,
            nbytes=nbytes,
            minimum=self.minimum if finite else None,
            maximum=self.maximum if finite else None,
            mean=self.mean if finite else None,
            std=math.sqrt(self.m2 / finite) if finite else None,
            zeros=self.zeros,
            nans=self.nans,
            infs=self.infs,
            fp16_overflow=self.over,
            fp16_underflow=self.under,
            digest=DIGEST_PREFIX + self.hash.hexdigest(),
            zero_rows=int(self.rows.size - self.rows.sum()),
            zero_columns=int(self.columns.size - self.columns.sum()),
        )


__all__ = ["FP16_MAX", "FP16_MIN_NORMAL", "Accumulator", "TensorStats"]
