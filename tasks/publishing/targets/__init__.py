"""Publish targets: where published forecasts go. One module per target in this package, each
defining `TARGET`, an instance of a `PublishTarget` subclass; `publish.targets` in params.yaml
chooses them, in order. The first is the system of record (it keeps every run and answers "what
is current"); the others receive its current view (exports).

Adding a target: a new module here with `TARGET = MyTarget()` and, if it writes a file, a
catalog entry for it in `outputs` (its DVC out); then name it in `publish.targets`.

A target writes its files through `pub.write(path, fill)`: every file of one publish (all
targets, the champion) is replaced together or not at all (tasks/publishing/transaction.py).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import polars as pl

from tasks import catalog, plugins
from tasks.publishing.store import directory_lock
from tasks.publishing.transaction import Transaction

if TYPE_CHECKING:
    from tasks.config import Config


@dataclass
class Publication:
    """One publish: this run's forecasts and lineage; `current` is the system of record's
    current view once it has been written (what the exports receive)."""

    forecasts: pl.DataFrame
    lineage: Mapping[str, str]
    txn: Transaction
    current: pl.DataFrame | None = None
    # Series quarantined by ingest: the system of record keeps their last forecasts, stale.
    keep: tuple[str, ...] = ()
    summaries: dict[str, dict] = field(default_factory=dict)

    def write(self, path: str | Path, fill: Callable[[Path], object]) -> object:
        """Have fill(temp) write `path`'s new content; it replaces `path` with the rest."""
        return self.txn.write(path, fill)


class PublishTarget(ABC):
    name: ClassVar[str]
    # Catalog entries this target writes: the publish stage's DVC outs when it is chosen.
    outputs: ClassVar[tuple[catalog.Entry, ...]] = ()
    # True: keeps every run and sets Publication.current (must come first in publish.targets).
    record: ClassVar[bool] = False

    def outputs_for(self, cfg: Config) -> tuple[catalog.Entry, ...]:
        """The entries it writes under this config (default: all of `outputs`)."""
        return self.outputs

    @abstractmethod
    def publish(self, pub: Publication, cfg: Config) -> dict:
        """Write the publication through pub.write (or pub.txn), never in place."""


def names() -> tuple[str, ...]:
    return plugins.names(__name__)


def load(name: str) -> PublishTarget:
    target = plugins.load(__name__, name, "TARGET")
    for entry in target.outputs:
        catalog.register(entry)
    return target


def publish(
    forecasts: pl.DataFrame,
    lineage: Mapping[str, str],
    cfg: Config,
    journal: str | Path,
    keep: tuple[str, ...] = (),
    also: Callable[[Publication], None] | None = None,
) -> dict:
    """Run the configured targets in order, then also(pub) (more files through pub.write), and
    replace every file they wrote as one unit; returns each target's summary by name. Series in
    `keep` (quarantined by ingest) keep their last published forecasts in the system of record."""
    targets = [load(n) for n in cfg.publish.targets]
    if not targets[0].record or any(t.record for t in targets[1:]):
        raise ValueError(
            "publish.targets: the first target must be the one system of record "
            f"(one of {', '.join(n for n in names() if load(n).record)}), the rest exports"
        )
    journal = Path(journal)
    with directory_lock(journal.parent), Transaction(journal) as txn:
        pub = Publication(forecasts=forecasts, lineage=lineage, txn=txn, keep=keep)
        for target in targets:
            pub.summaries[target.name] = target.publish(pub, cfg)
        if also is not None:
            also(pub)
        txn.commit()
    return pub.summaries
