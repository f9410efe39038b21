"""Small vectorized helpers shared by the generator's steps (ids, timestamps, weighted choices)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# ----------------------------------------------------------------------------- helpers


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """Format integer ids as zero-padded strings in Arrow (C++), not Python, for speed."""
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers, type=pa.int64()), pa.string()), width, "0")
    return pc.binary_join_element_wise(pa.scalar(prefix), digits, "")


def _timestamps(seconds: np.ndarray) -> pa.Array:
    """Epoch seconds to microsecond UTC timestamps (microseconds, not nanoseconds: Feast's DuckDB
    materialize breaks on nanoseconds)."""
    return pa.array(seconds.astype("int64") * 1_000_000, type=pa.timestamp("us", tz="UTC"))


def _choice(rng: np.random.Generator, options: np.ndarray, weights: np.ndarray, size: int):
    return options[rng.choice(len(options), size=size, p=weights / weights.sum())]


def _sample_rows(cumulative: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One categorical draw per row of a row-wise cumulative probability matrix."""
    draws = rng.random((cumulative.shape[0], 1), dtype=np.float32)
    return np.minimum((draws > cumulative).sum(axis=1), cumulative.shape[1] - 1)


def _categorical(labels: np.ndarray, codes: np.ndarray) -> pa.DictionaryArray:
    """A low-cardinality text column as codes into its labels: far smaller than one string per row."""
    return pa.DictionaryArray.from_arrays(pa.array(codes, type=pa.int32()), pa.array(labels))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))
