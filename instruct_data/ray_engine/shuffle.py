"""The one shuffle the Ray engine uses: rows hash-partitioned on an integer column, each
partition handed whole to a function (a groupby on the partition number: one call per
partition, however many keys it holds)."""

from __future__ import annotations

import numpy as np

_MIX = np.uint64(0x9E3779B97F4A7C15)


def partition_of(values, parts: int) -> np.ndarray:
    """A partition number in [0, parts) for each integer value, spread by a multiplicative hash."""
    with np.errstate(over="ignore"):
        mixed = np.asarray(values).astype(np.uint64) * _MIX
    return ((mixed >> np.uint64(32)) % np.uint64(parts)).astype(np.int64)


def _with_partition(batch, column: str, parts: int):
    batch = dict(batch)
    batch["_part"] = partition_of(batch[column], parts)
    return batch


def by_partition(ds, column: str, parts: int, fn, **fn_kwargs):
    """fn(all rows whose `column` hashes to one partition), for every partition."""
    ds = ds.materialize()
    if ds.count() == 0:
        # Nothing to shuffle (no candidate pair, say, once near pairs must agree on their
        # numbers): Ray Data's reduce fails on partitions whose blocks carry no columns.
        return ds
    tagged = ds.map_batches(_with_partition, fn_kwargs={"column": column, "parts": parts}, batch_format="numpy")
    return tagged.groupby("_part", num_partitions=parts).map_groups(_dropping_partition, fn_args=(fn,), fn_kwargs=fn_kwargs,
                                               batch_format="numpy")


def _dropping_partition(batch, fn, **fn_kwargs):
    batch = {name: values for name, values in batch.items() if name != "_part"}
    return fn(batch, **fn_kwargs)
