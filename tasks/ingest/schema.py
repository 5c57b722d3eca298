"""The long format as a pandera (polars) schema, built from the config.

One row per (series_id, timestamp) with a float `value`; any further columns are covariates and
must be numeric and finite. Every check carries a stable `name` (finite, min_value, ...): pandera
reports that name in `failure_cases["check"]`, and tasks.ingest.report words it for people.
pandera only sees rows one at a time (plus the key uniqueness); checks that need a series' order
or its time grid live in tasks.ingest.checks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pandera.polars as pa
import polars as pl
from pandera.api.polars.types import PolarsData

from tasks.columns import KEY, REQUIRED, SERIES_ID, TIMESTAMP, VALUE
from tasks.config import Config

# Boolean column ingest adds to its output: True where the row was created by gap filling.
# It is provenance, not a covariate (later stages may want to skip imputed points when scoring).
FILLED = "filled"

TIMESTAMP_DTYPE = pl.Datetime("us")

# Largest |value| the scalers take without overflow: StandardScaler squares deviations, and
# (1e154)^2 already exceeds float64's 1.8e308. Below it with a margin for the sums.
MAX_SCALABLE = 1e150


def covariate_columns(columns: Iterable[str]) -> list[str]:
    """Columns beyond the long format's own: optional covariates, in their source order."""
    own = {*REQUIRED, FILLED}
    return [c for c in columns if c not in own]


def _column_check(name: str, passes: Callable[[pl.Expr], pl.Expr]) -> pa.Check:
    """A named element-wise check on one column; pandera skips nulls (not_null reports them)."""
    return pa.Check(lambda data: data.lazyframe.select(passes(pl.col(data.key))), name=name)


def _finite_or_out_of_scope(bound: Callable[[pl.Expr], pl.Expr]) -> Callable[[pl.Expr], pl.Expr]:
    # NaN/inf are the `finite` check's to report; without this a -inf would also fail min_value
    # and show up twice in the report.
    return lambda col: col.is_finite().not_() | bound(col)


def value_rules(cfg: Config) -> dict[str, Callable[[pl.Expr], pl.Expr]]:
    """The row checks of `value` by name: each maps the column to True where the row passes.
    The pandera schema runs them one by one; tasks.ingest.screen fuses them into one pass."""
    rules = {"finite": lambda col: col.is_finite()}
    lo, hi = cfg.data.min_value, cfg.data.max_value
    if lo is not None:
        rules["min_value"] = _finite_or_out_of_scope(lambda c: c >= lo)
    if hi is not None:
        rules["max_value"] = _finite_or_out_of_scope(lambda c: c <= hi)
    if cfg.prepare.transform == "log":
        # min_value >= 0 (enforced by the config) still lets a 0 through; log(0) = -inf.
        rules["positive_for_log"] = _finite_or_out_of_scope(lambda c: c > 0)
    else:
        # After a log every finite value is small; untransformed, 1e308 would pass every bound
        # and overflow in the scaler, to be blamed later on the learning rate.
        rules["scalable"] = _finite_or_out_of_scope(lambda c: c.abs() <= MAX_SCALABLE)
    return rules


def _value_checks(cfg: Config) -> list[pa.Check]:
    return [_column_check(name, rule) for name, rule in value_rules(cfg).items()]


def _covariates_numeric(static: frozenset[str]):
    def check(data: PolarsData) -> pl.LazyFrame:
        # One boolean for the whole frame: a text column is a schema problem, not a per-row one.
        # Static covariates (data.covariates.static) may be text: prepare one-hot encodes them.
        schema = data.lazyframe.collect_schema()
        ok = all(
            schema[c].is_numeric() or schema[c] == pl.Boolean or c in static
            for c in covariate_columns(schema.names())
        )
        return data.lazyframe.select(pl.lit(ok))

    return check


def covariate_ok(name: str, dtype: pl.DataType) -> pl.Expr:
    """Per row: the covariate is usable: a finite number, or for a text static present."""
    if dtype.is_numeric() or dtype == pl.Boolean:
        return pl.col(name).cast(pl.Float64).is_finite().fill_null(False)
    return pl.col(name).is_not_null()


def _covariates_finite(data: PolarsData) -> pl.LazyFrame:
    """Per row: every covariate is present, and finite when numeric (a model cannot take nulls)."""
    schema = data.lazyframe.collect_schema()
    per_column = [covariate_ok(c, schema[c]) for c in covariate_columns(schema.names())]
    return data.lazyframe.select(pl.all_horizontal(per_column or [pl.lit(True)]))


def build_schema(cfg: Config) -> pa.DataFrameSchema:
    """Schema of the validated long format; the value range and log check come from `cfg`."""
    return pa.DataFrameSchema(
        {
            SERIES_ID: pa.Column(pl.String, nullable=False),
            TIMESTAMP: pa.Column(TIMESTAMP_DTYPE, nullable=False),
            VALUE: pa.Column(pl.Float64, nullable=False, checks=_value_checks(cfg)),
        },
        checks=[
            pa.Check(
                _covariates_numeric(frozenset(cfg.data.covariates.static)),
                name="covariate_numeric",
            ),
            pa.Check(_covariates_finite, name="covariate_finite"),
        ],
        unique=list(KEY),
        strict=False,  # covariates are allowed; the dataframe-level checks cover them
        name="long_format",
    )
