"""The one timestamp format of the JSON outputs: the same text from numpy and Python values."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl

from tasks.timefmt import iso


def test_numpy_and_python_timestamps_give_the_same_text():
    assert iso(np.datetime64("1949-01-01T00:00:00.000000", "us")) == "1949-01-01T00:00:00"
    assert iso(datetime(1949, 1, 1)) == "1949-01-01T00:00:00"
    assert iso(np.datetime64("1960-12-01", "D")) == "1960-12-01T00:00:00"
    # what polars hands out for a Datetime column's min/max
    assert iso(pl.Series([datetime(1950, 6, 1, 13, 5, 7)]).max()) == "1950-06-01T13:05:07"


def test_none_stays_none_and_sub_seconds_are_cut():
    assert iso(None) is None
    assert iso(datetime(1950, 1, 1, 0, 0, 1, 500_000)) == "1950-01-01T00:00:01"
