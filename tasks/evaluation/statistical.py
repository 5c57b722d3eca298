"""Statistical per-series candidates from statsforecast, fitted over many series at once.

Smooth series: AutoETS (`ets`), AutoTheta (`theta`) and AutoCES (`ces`). Why: the
LSTM-or-baseline mixture was 14.5 % worse than AutoETS on 30 M3 monthly series
(benchmarks/results/accuracy_m3.json); exponential smoothing and Theta are the classic strong
per-series models there. Complex exponential smoothing is there for combinations
(tasks/evaluation/combinations.py): alone it is no better than ETS, but its errors differ from
ETS's and Theta's, and it costs a tenth of an ETS fit.

Intermittent demand (series with many zeros, where ETS and Theta smooth the zeros into a level
that is never observed and MASE punishes it), one candidate per kind of intermittency:
- `croston`, CrostonOptimized: sizes and intervals between demands smoothed separately, each
  with its fitted smoothing weight; the reference method for intermittent series whose non-zero
  sizes vary little (Syntetos-Boylan "intermittent").
- `adida`, ADIDA: sums the series over blocks as long as the mean interval between demands (the
  zeros vanish), forecasts the block totals by exponential smoothing and spreads them back;
  sturdier where the sizes vary a lot too ("lumpy").
- `tsb`, TSB: smooths the probability of a demand every period, so its forecast decays when
  demand stops (obsolescence), where Croston keeps forecasting the last rate forever. statsforecast
  does not fit its two weights: 0.1 each, the literature's usual low value (Teunter, Syntetos and
  Babai 2011 test 0.05-0.3; SAP's CrostonTSB defaults to 0.1).
On a series without zeros all three reduce to exponential smoothing of the level, so scoring them
there is harmless: the per-series choice keeps them only where they win on the older folds.
Measured on seeded synthetic sets (benchmarks/intermittent.py, mean RMSE over 60 series): ADIDA is
within 1 % of the best statistical model on each kind; Croston is best on the plain intermittent
set by a hair (2.585 vs ETS 2.611) but fails when demand stops (2.91 vs ADIDA 0.15, TSB 0.23); ETS
(simple exponential smoothing there) is close on stationary intermittent series but costs about
6x as much. So for a default list `adida` and `tsb` are the ones to add; `croston` is there for
the series it suits and as the reference.

They are candidates of the per-series choice (tasks/evaluation/selection.py) beside the naive
baselines, listed in `evaluate.candidates`: scored on every backtest fold like a baseline, chosen
for a series only where they beat the LSTM and every other candidate on the older folds, published
with conformal intervals by the same method.

Fitting (`forecast_many`): one `StatsForecast(models, freq=1, n_jobs).forecast` over all series
of a fold (or of a candidate at publish time) with every listed model, in chunks of series sized
to about `CHUNK_S` seconds so that progress is reported while it runs. One call per fold rather
than `cross_validation` over the folds: a series' season rule depends on the history of each fold
(below), which statsforecast's windows cannot vary, and the fits are the same either way (the
cross-validation of statsforecast refits each window too). Per series and model the result is
exactly what the per-series functions (`ets`, `theta`, ...; the reference, tested equal) give:
- season rule: a seasonal model (ETS, Theta, CES) gets `season_length` when the history holds
  more than one season, statsforecast's own rule for AutoETS (which then picks a seasonal form
  only where its AICc says so), else season_length 1. AutoTheta and AutoCES look for a season
  only from two full seasons on and fit exactly as with season_length 1 below that (tested), so
  only ETS gains from the one-season rule: on M3's tuning split cut to the last 23 months of
  history, mean MASE 1.256 against 1.288 with the two-season rule (the last 13, 14 or 18 months
  within 0.2 %; quarterly's last 5-7 quarters identical; benchmarks/results/season_rule.json);
- a fit that raises or forecasts a non-finite value (a series too short or too odd for the model),
  and a history holding a non-finite value, forecast the last value instead, exactly what the
  `naive` candidate forecasts: such a series is then judged as naive and never chosen over it
  (naive comes first, and a tie goes to the earlier candidate).

On a Dask cluster (`execution.engine: dask`, tasks/evaluation/distributed.py, entered with
`using`): the same calls with n_jobs 1, one per partition of series, run on the workers instead.

statsforecast (numba; about 5 s to import) is imported on first use, so a run whose candidates
list none of these never pays for it.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

# candidate name -> (statsforecast model class, constructor options, whether it takes
# season_length and so follows the season rule).
SPECS: dict[str, tuple[str, dict, bool]] = {
    "ets": ("AutoETS", {}, True),
    "theta": ("AutoTheta", {}, True),
    "ces": ("AutoCES", {}, True),
    "croston": ("CrostonOptimized", {}, False),
    "adida": ("ADIDA", {}, False),
    "tsb": ("TSB", {"alpha_d": 0.1, "alpha_p": 0.1}, False),
}
CHUNK_S = 10.0  # target seconds per StatsForecast call: progress lines come at least this often
# Series per job in the first call, before any timing is known: few, since one fit of a long
# seasonal series can take seconds and the first progress line waits for that call.
FIRST_CHUNK = 2


def season_for(n: int, season_length: int) -> int:
    """The season length a seasonal model is fitted with on `n` values of history: with more
    than one season, the season (statsforecast's rule for AutoETS); else the non-seasonal model."""
    return season_length if n > season_length else 1


def _model(name: str, season_length: int):
    from statsforecast import models

    cls, options, seasonal = SPECS[name]
    season = {"season_length": season_length} if seasonal else {}
    return getattr(models, cls)(**season, **options)


def _history(history: ArrayLike) -> NDArray[np.float64]:
    y = np.asarray(history, dtype=np.float64)
    if y.ndim != 1 or y.size == 0:
        raise ValueError(f"history must be a non-empty 1-D array, got shape {y.shape}")
    return y


def _or_last(pred: np.ndarray, y: np.ndarray, horizon: int) -> np.ndarray:
    """`pred` if it is a finite (horizon,) forecast, else the last value (the module docstring)."""
    if pred.shape != (horizon,) or not np.all(np.isfinite(pred)):
        return np.full(horizon, y[-1])
    return pred


def _fit(name: str, history: ArrayLike, horizon: int, season_length: int) -> np.ndarray:
    """One model on one series: the reference that `forecast_many` must equal."""
    y = _history(history)
    if not np.all(np.isfinite(y)):
        return np.full(horizon, y[-1])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = _model(name, season_for(y.size, season_length))
            pred = np.asarray(model.forecast(y=y, h=horizon)["mean"], dtype=np.float64)
    except Exception:  # noqa: BLE001 - any failure of the fit: judged as naive (docstring)
        pred = np.full(horizon, np.nan)
    return _or_last(pred, y, horizon)


def ets(history: ArrayLike, horizon: int, season_length: int) -> NDArray[np.float64]:
    """AutoETS: the exponential-smoothing state-space model (error, trend, season each none,
    additive or multiplicative; damped trend allowed) with the lowest AICc on the history."""
    return _fit("ets", history, horizon, season_length)


def theta(history: ArrayLike, horizon: int, season_length: int) -> NDArray[np.float64]:
    """AutoTheta: the best of the standard, optimised and dynamic Theta models on the history
    (classical multiplicative seasonal decomposition when the series tests seasonal)."""
    return _fit("theta", history, horizon, season_length)


def ces(history: ArrayLike, horizon: int, season_length: int) -> NDArray[np.float64]:
    """AutoCES: complex exponential smoothing (Svetunkov and Kourentzes), none, simple, partial
    or full seasonal, the one with the lowest AICc; a level and a "potential" that model trend
    and level together without choosing between them."""
    return _fit("ces", history, horizon, season_length)


def croston(history: ArrayLike, horizon: int, season_length: int) -> NDArray[np.float64]:
    """CrostonOptimized: smoothed non-zero size / smoothed interval, each weight fitted."""
    return _fit("croston", history, horizon, season_length)


def adida(history: ArrayLike, horizon: int, season_length: int) -> NDArray[np.float64]:
    """ADIDA: exponential smoothing of block totals (block = the mean interval), spread back."""
    return _fit("adida", history, horizon, season_length)


def tsb(history: ArrayLike, horizon: int, season_length: int) -> NDArray[np.float64]:
    """TSB: smoothed demand probability x smoothed non-zero size (weights 0.1, docstring)."""
    return _fit("tsb", history, horizon, season_length)


STATISTICAL = {
    "ets": ets, "theta": theta, "ces": ces, "croston": croston, "adida": adida, "tsb": tsb,
}  # fmt: skip


# ---------------------------------------------------------------- many series at once
def default_jobs() -> int:
    """The cores this process may run on (a container's CPU set, not the host's count)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not Linux
        return max(os.cpu_count() or 1, 1)


# The engine `forecast_many` fits on: None is this machine; else an object with
# `partitions(members)` and `map(fn, calls)` (tasks/evaluation/distributed.py DaskEngine), set
# for a block by `using`.
_ENGINE: ContextVar = ContextVar("forecast_engine", default=None)


@contextmanager
def using(engine) -> Iterator[None]:
    """`forecast_many` inside the block fits on `engine` (None: this machine)."""
    token = _ENGINE.set(engine)
    try:
        yield
    finally:
        _ENGINE.reset(token)


def fitting(names: Sequence[str], n_jobs: int | None = None) -> str:
    """What a progress line says is being fitted: `ets, theta in 2 processes` (the processes
    only where a statistical candidate is among `names`)."""
    if not any(name in SPECS for name in names):
        return ", ".join(names)
    if _ENGINE.get() is not None:
        return f"{', '.join(names)} {_ENGINE.get().describe()}"
    jobs = default_jobs() if n_jobs is None else n_jobs
    return f"{', '.join(names)} in {jobs} process{'es' if jobs > 1 else ''}"


def _statsforecast_call(
    names: Sequence[str], ys: list[np.ndarray], horizon: int, season: int, n_jobs: int
) -> dict[str, np.ndarray]:
    """One StatsForecast.forecast over `ys` (finite, non-empty): name -> (len(ys), horizon)."""
    import polars as pl
    from statsforecast import StatsForecast
    from statsforecast.models import Naive

    models = []
    for name in names:
        model = _model(name, season)
        model.alias = name
        models.append(model)
    lengths = np.array([y.size for y in ys])
    # Integer time steps (freq 1): the forecasts are read back by position, so no calendar is
    # needed; ids 0..n-1 are already in the order StatsForecast sorts its output in.
    frame = pl.DataFrame(
        {
            "unique_id": np.repeat(np.arange(len(ys)), lengths),
            "ds": np.concatenate([np.arange(n) for n in lengths]),
            "y": np.concatenate(ys),
        }
    )
    # Naive is the fallback of a fit that raises: the last value, as `_fit` forecasts then.
    sf = StatsForecast(models=models, freq=1, n_jobs=n_jobs, fallback_model=Naive())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # forked workers inherit the filter
        out = sf.forecast(df=frame, h=horizon)
    return {name: out[name].to_numpy().reshape(len(ys), horizon) for name in names}


def _chunk_size(done: int, elapsed: float, n_jobs: int, remaining: int) -> int:
    """Series for the next call: about CHUNK_S seconds at the rate measured so far."""
    timed = done > 0 and elapsed > 0
    size = int(CHUNK_S * done / elapsed) if timed else FIRST_CHUNK * n_jobs
    return max(min(size, remaining), min(n_jobs, remaining), 1)


def forecast_many(
    names: Sequence[str],
    histories: Sequence[ArrayLike],
    horizon: int,
    season_length: int,
    n_jobs: int | None = None,
    on_progress: Callable[[int], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, NDArray[np.float64]]:
    """name -> (S, horizon) forecasts of every statistical candidate in `names` for every history,
    equal to `STATISTICAL[name](history, horizon, season_length)` per series (module docstring).

    `n_jobs`: StatsForecast's processes (None: `default_jobs()`). `on_progress(done)` is called
    after each call with the number of series fitted so far (every model in `names` on each)."""
    unknown = [name for name in names if name not in SPECS]
    if unknown:
        raise ValueError(f"not a statistical candidate: {unknown}; known: {sorted(SPECS)}")
    ys = [_history(h) for h in histories]
    out = {name: np.empty((len(ys), horizon)) for name in names}
    for name in names:
        for s, y in enumerate(ys):
            out[name][s] = y[-1]  # the fallback; overwritten by every fit made below
    jobs = default_jobs() if n_jobs is None else max(int(n_jobs), 1)
    seasonal = any(SPECS[name][2] for name in names)
    # Series a fit is made for, grouped by the season the seasonal models get (one call per
    # season length: a StatsForecast call has one set of models); non-finite ones keep the fallback.
    groups: dict[int, list[int]] = {}
    for s, y in enumerate(ys):
        if np.all(np.isfinite(y)):
            m = season_for(y.size, season_length) if seasonal else 1
            groups.setdefault(m, []).append(s)
    engine = _ENGINE.get()
    if engine is not None:
        done = _on_engine(engine, names, ys, groups, horizon, out, on_progress)
    else:
        done = _here(names, ys, groups, horizon, jobs, out, on_progress, clock)
    if on_progress is not None and done < len(ys):
        on_progress(len(ys))  # the unfittable ones, answered by the fallback
    return out


def _on_engine(engine, names, ys, groups, horizon, out, on_progress) -> int:
    """The fits of `groups` as partitions of series on `engine` (a cluster): the local engine's
    call with n_jobs 1 per partition. Returns the series fitted."""
    parts = [(m, part) for m, members in groups.items() for part in engine.partitions(members)]
    calls = [(names, [ys[s] for s in part], horizon, m, 1) for m, part in parts]
    done = 0
    for i, preds in engine.map(_statsforecast_call, calls):
        part = parts[i][1]
        for name in names:
            for row, s in enumerate(part):
                out[name][s] = _or_last(preds[name][row], ys[s], horizon)
        done += len(part)
        if on_progress is not None:
            on_progress(done)
    return done


def _here(names, ys, groups, horizon, jobs, out, on_progress, clock) -> int:
    """The fits of `groups` on this machine, in calls of about CHUNK_S seconds."""
    done, started = 0, clock()
    for m, members in groups.items():
        at = 0
        while at < len(members):
            size = _chunk_size(done, clock() - started, jobs, len(members) - at)
            chunk = members[at : at + size]
            preds = _statsforecast_call(names, [ys[s] for s in chunk], horizon, m, jobs)
            for name in names:
                for row, s in enumerate(chunk):
                    out[name][s] = _or_last(preds[name][row], ys[s], horizon)
            at += size
            done += size
            if on_progress is not None:
                on_progress(done)
    return done
