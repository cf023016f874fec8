"""Minimum group size for published aggregates (k-anonymity of counts).

An aggregate is published safely when every group it reports holds at least ``k`` individuals:
a group of one is that person. ``suppress_small_groups`` is the helper a product applies before
it returns; ``smallest_group`` is what the platform's check measures on the stored product.
"""

from __future__ import annotations

import pandas as pd


def smallest_group(frame: pd.DataFrame, count_column: str) -> int | None:
    """The smallest group size in ``count_column``; None for an empty aggregate."""
    if count_column not in frame.columns:
        raise KeyError(
            f"The aggregate has no column '{count_column}' (the group size its "
            "declassification names); columns: " + ", ".join(map(str, frame.columns))
        )
    sizes = frame[count_column]
    if sizes.isna().any():
        return 0
    return int(sizes.min()) if len(sizes) else None


def suppress_small_groups(frame: pd.DataFrame, count_column: str, k: int) -> pd.DataFrame:
    """The aggregate without its groups smaller than ``k`` (or of unknown size)."""
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}.")
    sizes = frame[count_column]
    return frame[sizes.notna() & (sizes >= k)].reset_index(drop=True)
