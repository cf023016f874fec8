"""Synthetic, deterministic orders: the same day always gives the same rows, with no network."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd

COUNTRIES = ["DE", "FR", "NL", "ES", "IT", "US", "CA", "BR", "JP", "IN", "AU", "SG"]
CHANNELS = ["web", "mobile", "store", "partner"]
CUSTOMERS = 400
SAMPLE_LANDINGS = tuple(datetime(2026, 11, day, 23, 59, 59, tzinfo=UTC) for day in range(1, 8))
FIRST_NAMES = ["ana", "ben", "chen", "dara", "eli", "fatima", "goran", "hana", "ivo", "jules"]
LAST_NAMES = ["meyer", "dubois", "jansen", "garcia", "rossi", "smith", "tanaka", "patel"]


def customer_directory() -> pd.DataFrame:
    """Every synthetic customer with a stable id, a personal email address and a home country."""
    rng = np.random.default_rng(2026)
    ids = [f"C{n:05d}" for n in range(1, CUSTOMERS + 1)]
    first = rng.choice(FIRST_NAMES, CUSTOMERS)
    last = rng.choice(LAST_NAMES, CUSTOMERS)
    return pd.DataFrame(
        {
            "customer_id": ids,
            "email": [
                f"{g}.{s}{n}@example.com" for n, (g, s) in enumerate(zip(first, last, strict=True))
            ],
            "country": rng.choice(COUNTRIES, CUSTOMERS),
        }
    )


def orders_for_day(day: str) -> pd.DataFrame:
    """The orders taken on ``day`` (YYYY-MM-DD), between 40 and 80 of them."""
    start = pd.Timestamp(day, tz="UTC")
    rng = np.random.default_rng(int(start.strftime("%Y%m%d")))
    count = int(rng.integers(40, 81))
    customers = customer_directory().iloc[rng.integers(0, CUSTOMERS, count)].reset_index(drop=True)
    seconds = np.sort(rng.integers(0, 86_400, count))
    discount = np.round(rng.uniform(0, 0.3, count), 2)
    return pd.DataFrame(
        {
            "order_id": [f"O-{start:%Y%m%d}-{n:04d}" for n in range(1, count + 1)],
            "customer_id": customers["customer_id"],
            "email": customers["email"],
            "country": customers["country"],
            "channel": pd.Categorical(rng.choice(CHANNELS, count), categories=CHANNELS),
            "amount": np.round(rng.gamma(2.0, 40.0, count), 2),
            "quantity": rng.integers(1, 6, count).astype("int64"),
            "discount": pd.Series(discount).where(rng.random(count) > 0.6),
            "is_gift": rng.random(count) < 0.1,
            "ordered_at": start + pd.to_timedelta(seconds, unit="s"),
        }
    )


def orders_file(at: datetime) -> pd.DataFrame:
    """The orders file the shop lands at ``at``: that day's orders, with ids unique to the file."""
    frame = orders_for_day(f"{at:%Y-%m-%d}")
    frame["order_id"] = [f"O-{at:%Y%m%d%H%M%S%f}-{n:04d}" for n in range(1, len(frame) + 1)]
    return frame
