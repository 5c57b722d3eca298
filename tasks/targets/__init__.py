"""Publish targets: where published forecasts go. One module per target in this package, each
defining `TARGET`, an instance of a `PublishTarget` subclass; `publish.targets` in params.yaml
chooses them, in order. The first is the system of record (it keeps every run and answers "what
is current"); the others receive its current view (exports).

Adding a target: a new module here with `TARGET = MyTarget()` and, if it writes a file, a
catalog entry for it in `outputs` (its DVC out); then name it in `publish.targets`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import polars as pl

from tasks import catalog, plugins

if TYPE_CHECKING:
    from tasks.config import Config


@dataclass
class Publication:
    """One publish: this run's forecasts and lineage; `current` is the system of record's
    current view once it has been written (what the exports receive)."""

    forecasts: pl.DataFrame
    lineage: Mapping[str, str]
    current: pl.DataFrame | None = None
    # Series quarantined by ingest: the system of record keeps their last forecasts, stale.
    keep: tuple[str, ...] = ()
    summaries: dict[str, dict] = field(default_factory=dict)


class PublishTarget(ABC):
    name: ClassVar[str]
    # Catalog entries this target writes: the publish stage's DVC outs when it is chosen.
    outputs: ClassVar[tuple[catalog.Entry, ...]] = ()
    # True: keeps every run and sets Publication.current (must come first in publish.targets).
    record: ClassVar[bool] = False

    @abstractmethod
    def publish(self, pub: Publication, cfg: Config) -> dict:
        """Write the publication; atomically (a crash leaves the previous state readable)."""


def names() -> tuple[str, ...]:
    return plugins.names(__name__)


def load(name: str) -> PublishTarget:
    target = plugins.load(__name__, name, "TARGET")
    for entry in target.outputs:
        catalog.register(entry)
    return target


def publish(
    forecasts: pl.DataFrame, lineage: Mapping[str, str], cfg: Config, keep: tuple[str, ...] = ()
) -> dict:
    """Run the configured targets in order; returns each one's summary by name."""
    targets = [load(n) for n in cfg.publish.targets]
    if not targets[0].record or any(t.record for t in targets[1:]):
        raise ValueError(
            "publish.targets: the first target must be the one system of record "
            f"(one of {', '.join(n for n in names() if load(n).record)}), the rest exports"
        )
    pub = Publication(forecasts=forecasts, lineage=lineage, keep=keep)
    for target in targets:
        pub.summaries[target.name] = target.publish(pub, cfg)
    return pub.summaries
