"""The source's header against params.yaml, before anything heavy starts (Prefect, TensorFlow):
the columns data.columns names and data.covariates declares, read from the header alone (a
CSV's first line, a Parquet file's schema; a directory's files each), so that a wrong file fails
in a second with one message instead of minutes into a run. The values are ingest's to check.

A source that is not a file (a custom data source, tasks/ingest/sources/) is not looked at here:
ingest checks it as it reads it. A missing path is left to ingest too (it may be an upstream
export not landed yet, which the ingest task retries).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from tasks.config import Config
from tasks.errors import DataSourceError, SourceMismatch
from tasks.ingest import sources
from tasks.ingest.covariate_checks import check_columns
from tasks.ingest.read import map_columns


def header_names(path: Path, source: str = "auto") -> list[tuple[str, list[str]]]:
    """(file, its column names) for each file the source would read; [] where it cannot say
    (not there, not a file source)."""
    if not path.exists():
        return []
    chosen = sources.choose(path, source)
    if chosen.name == "directory":
        suffixes = sources.file_suffixes()
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
    elif chosen.name in ("csv", "parquet"):
        files = [path]
    else:
        return []
    return [(str(f), _names(f)) for f in files]


def _names(path: Path) -> list[str]:
    try:
        if path.suffix.lower() == ".parquet":
            return list(pl.read_parquet_schema(path))
        return pl.read_csv(path, n_rows=0, infer_schema_length=0).columns
    except (pl.exceptions.PolarsError, OSError) as err:
        raise sources.unreadable(path, err) from None


def check_header(cfg: Config, path: str | Path | None = None) -> None:
    """Raise SourceMismatch (tasks.errors: what, where, the fix) when the source's columns do not
    fit data.columns and data.covariates."""
    path = Path(cfg.data.path if path is None else path)
    union: dict[str, None] = {}
    for origin, names in header_names(path, cfg.data.source):
        frame = pl.DataFrame(schema=dict.fromkeys(names, pl.String))
        mapped = map_columns(frame, cfg.data.columns.mapping(), origin, single=path.stem)
        union.update(dict.fromkeys(mapped.columns))
    if not union:
        return
    try:
        # Names only: every type passes here (ingest checks the types on the data).
        check_columns(pl.Schema(dict.fromkeys(union, pl.Float64)), cfg, "")
    except DataSourceError as err:
        what = str(err).removeprefix(": covariates: ")
        raise SourceMismatch(f"covariates: {what}", f"{path} (data.path)", COVARIATE_FIX) from None


COVARIATE_FIX = (
    "list each extra column under data.covariates.past, .future or .static in params.yaml "
    "(or drop it from the file); remove declared covariates the file does not have"
)
