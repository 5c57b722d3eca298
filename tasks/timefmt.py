"""The one way a single timestamp is written in JSON outputs (metrics, champion metadata)."""

from __future__ import annotations

from datetime import datetime

import numpy as np


def iso(ts: np.datetime64 | datetime | None) -> str | None:
    """ISO 8601 to the second, without zone ("1949-01-01T00:00:00"); None stays None.

    Sub-second parts are cut. The champion's `trained_through` and the backtest origins are
    compared as these strings across runs, so the format must not change between versions.
    (The store writes whole columns with a polars expression: tasks.publishing.store.TS_FORMAT.)
    """
    if ts is None:
        return None
    return str(np.datetime_as_string(np.datetime64(ts, "us"), unit="s"))
