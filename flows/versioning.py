"""Every production run versioned and restorable: git records what ran, the DVC remote the bytes.

A versioned run (flows/pipeline.py with version=True, what the deployment runs):
  1. `dvc push` to the configured remote: validated data, prepared arrays, scaler, model and the
     published store/export of this run, content-addressed by the md5s in dvc.lock;
  2. a git commit of dvc.lock, params.yaml, the metrics and plots (DVC keeps them in git), the
     .gitignore files DVC writes beside its outputs and the raw data file when it lives in git;
  3. an annotated tag `<tag_prefix>/<UTC time>-<data md5[:8]>` on that commit, its message a JSON
     summary (flow run, data and model md5, gate decision).
Push first: a tag that names bytes the remote does not hold could not be restored.

`restore` reads any tagged run's outputs back (from the local cache, else the remote) into a
directory; `rollback` makes the forecasts that were current at a tagged run current again by
re-publishing them through the store's atomic publish, and records that in dvc.lock.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import yaml

from flows.git import git
from tasks.errors import PipelineError
from tasks.io import md5_file

GIT_IDENTITY = ("forecast-pipeline", "forecast-pipeline@localhost")


class VersioningError(PipelineError):
    """DVC refused to record or restore a run, or a run is not there (a refused git command
    raises flows.git.GitError)."""


# ---------------------------------------------------------------- small helpers
def _lock_at(root: Path, rev: str) -> dict:
    text = git(["show", f"{rev}:dvc.lock"], root).stdout
    return yaml.safe_load(text) or {}


def lock_outputs(lock: dict) -> dict[str, str | None]:
    """{path: md5} of every output in a dvc.lock mapping (metrics and plots included)."""
    outs: dict[str, str | None] = {}
    for stage in (lock.get("stages") or {}).values():
        for out in stage.get("outs") or []:
            outs[out["path"]] = out.get("md5")
    return outs


def _dvc_ignore_files(root: Path) -> list[str]:
    """The .gitignore files DVC writes beside its cached outputs."""
    lock_path = root / "dvc.lock"
    if not lock_path.exists():
        return []
    lock = yaml.safe_load(lock_path.read_text()) or {}
    dirs = {Path(p).parent for p in lock_outputs(lock)}
    return sorted(str(d / ".gitignore") for d in dirs if (root / d / ".gitignore").is_file())


def _identity(root: Path) -> list[str]:
    """`-c user.name/email` when the repository has no identity (a fresh production clone)."""
    if git(["config", "user.email"], root, check=False).stdout.strip():
        return []
    return ["-c", f"user.name={GIT_IDENTITY[0]}", "-c", f"user.email={GIT_IDENTITY[1]}"]


def _inside(root: Path, path: str) -> str | None:
    p = (root / path).resolve()
    try:
        return str(p.relative_to(root.resolve()))
    except ValueError:
        return None


# ---------------------------------------------------------------- record a run
def dvc_push(root: Path, remote: str) -> int:
    from flows.dvc import call
    from flows.repolock import RepositoryLocked

    try:
        return call(root, lambda repo: repo.push(remote=remote))
    except RepositoryLocked:
        raise
    except Exception as err:  # DVC raises many types; the run must fail with the reason
        raise VersioningError(f"dvc push to remote {remote!r} failed: {err}") from err


def commit_run(
    root: Path,
    *,
    tag_prefix: str,
    data_path: str,
    title: str,
    summary: dict,
    extra_paths: Iterable[str] = (),
) -> dict:
    """Commit dvc.lock and its companions and tag the commit; returns {"commit", "tag"}.

    Only the paths named here are committed (`git commit -- PATHS`), so whatever else is staged
    or edited in the repository stays out of the run's commit."""
    root = Path(root)
    paths = ["dvc.lock", "params.yaml", *_dvc_ignore_files(root), *extra_paths]
    paths += [p for p in ("metrics", "plots") if (root / p).is_dir()]
    raw = _inside(root, data_path)
    if raw and (root / raw).exists():
        paths.append(raw)
    paths = sorted({p for p in paths if (root / p).exists()})
    git(["add", "--", *paths], root)
    staged = git(["diff", "--cached", "--quiet", "--", *paths], root, check=False)
    if staged.returncode == 0:
        head = git(["rev-parse", "HEAD"], root, check=False).stdout.strip()
        commit = head or None
    else:
        message = f"{title}\n\n{json.dumps(summary, indent=2, sort_keys=True, default=str)}\n"
        git([*_identity(root), "commit", "-q", "-m", message, "--", *paths], root)
        commit = git(["rev-parse", "HEAD"], root).stdout.strip()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    tag = f"{tag_prefix}/{stamp}-{summary.get('data_md5', 'unknown')[:8]}"
    tag_message = json.dumps(summary, sort_keys=True, default=str)
    git([*_identity(root), "tag", "-a", tag, "-m", tag_message, commit or "HEAD"], root)
    return {"commit": commit, "tag": tag}


def version_run(
    root: Path, *, remote: str, tag_prefix: str, data_path: str, title: str, summary: dict
) -> dict:
    """Push the run's DVC outputs, then commit and tag it (see the module docstring)."""
    pushed = dvc_push(root, remote)
    info = commit_run(
        root, tag_prefix=tag_prefix, data_path=data_path, title=title, summary=summary
    )
    return {**info, "pushed_files": pushed, "remote": remote}


def push_tag(root: Path, remote: str, tag: str) -> None:
    """Send a run's tag (and the commit it names) to the git remote `remote`: a run made on a
    Prefect worker's clone is then seen by every other clone (`git fetch --tags`, then `dvc pull`
    reads the bytes its dvc.lock names from the DVC remote, pushed before the commit)."""
    git(["push", "-q", remote, f"refs/tags/{tag}"], root)


def unversioned_outputs(root: Path, tag_prefix: str) -> list[str]:
    """Outputs whose md5 in the workspace's dvc.lock differs from the newest versioned run's
    (all of them before the first version). A run that itself changed nothing still versions
    these: a manual run or a rollback with --no-version published them since."""
    root = Path(root)
    lock_path = root / "dvc.lock"
    if not lock_path.exists():
        return []
    current = lock_outputs(yaml.safe_load(lock_path.read_text()) or {})
    runs = list_runs(root, tag_prefix)
    if not runs:
        return sorted(current)
    try:
        versioned = lock_outputs(_lock_at(root, runs[0]["tag"]))
    except PipelineError:  # a tag whose commit has no dvc.lock: nothing of it is versioned
        versioned = {}
    return sorted(p for p in {*current, *versioned} if current.get(p) != versioned.get(p))


# ---------------------------------------------------------------- list, restore, rollback
def list_runs(root: Path, tag_prefix: str) -> list[dict]:
    """Versioned runs, newest first: tag, commit, time and the summary recorded in the tag."""
    fmt = "%00".join(
        (
            "%(refname:short)",
            "%(objectname)",
            "%(*objectname)",
            "%(creatordate:iso-strict)",
            "%(contents)",
        )
    )
    out = git(
        ["for-each-ref", "--sort=-creatordate", f"--format={fmt}%01", f"refs/tags/{tag_prefix}/"],
        root,
    ).stdout
    runs = []
    for record in filter(None, (r.strip("\n") for r in out.split("\x01"))):
        tag, obj, commit, when, body = record.split("\x00", 4)
        try:
            summary = json.loads(body.strip() or "{}")
        except json.JSONDecodeError:
            summary = {}
        runs.append({"tag": tag, "commit": commit or obj, "time": when, **summary})
    # Tags made in the same second sort by name (their names carry microseconds).
    runs.sort(key=lambda r: (r["time"], r["tag"]), reverse=True)
    return runs


def resolve_run(root: Path, tag_prefix: str, ref: str) -> str:
    """A run tag from its full name, its name without the prefix, or "latest"/"previous"."""
    runs = list_runs(root, tag_prefix)
    if not runs:
        raise VersioningError(f"no versioned runs (no tags under {tag_prefix}/)")
    if ref in ("latest", "previous"):
        index = 0 if ref == "latest" else 1
        if len(runs) <= index:
            raise VersioningError(f"there is no {ref} run (only {len(runs)} versioned)")
        return runs[index]["tag"]
    for r in runs:
        if ref in (r["tag"], r["tag"].removeprefix(f"{tag_prefix}/")):
            return r["tag"]
    matches = [r["tag"] for r in runs if r["commit"].startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    raise VersioningError(f"no versioned run {ref!r}; `python -m flows.runs list` shows them")


def _remote_config(root: Path) -> dict:
    """The workspace's remotes with their URLs resolved here. DVC reads a past revision's
    .dvc/config from git and would resolve a relative URL (`../../forecast-dvc-remote`) against
    the root of the git tree instead of this checkout."""
    from flows.dvc import open_repo

    with open_repo(root) as repo:
        remotes = {name: dict(conf) for name, conf in repo.config["remote"].items()}
        core = {k: v for k, v in repo.config["core"].items() if k == "remote"}
    return {"remote": remotes, "core": core}


def restore(root: Path, rev: str, dest: Path, remote: str | None = None) -> list[str]:
    """Write every output dvc.lock records at `rev` (data, model, forecasts, metrics) under
    `dest`, byte for byte: from the local cache, else fetched from the DVC remote."""
    from dvc.repo import Repo

    from flows.dvc import call
    from flows.repolock import RepositoryLocked

    root, dest = Path(root), Path(dest)
    outs = lock_outputs(_lock_at(root, rev))
    if not outs:
        raise VersioningError(f"dvc.lock at {rev} records no outputs")
    written = []
    try:
        config = _remote_config(root)
        # Bring the run's objects into the local cache (a no-op for those already there).
        call(
            root, lambda repo: repo.fetch(revs=[rev], remote=remote, workspace=False, config=config)
        )
        with Repo(str(root), rev=rev, config=config) as repo:
            fs = repo.dvcfs
            for path in sorted(outs):
                target = dest / path
                target.parent.mkdir(parents=True, exist_ok=True)
                fs.get_file(path, str(target))
                written.append(path)
    except (VersioningError, RepositoryLocked):
        raise
    except Exception as err:
        raise VersioningError(f"cannot restore {rev}: {err}") from err
    for path in written:
        md5 = outs[path]
        if md5 and md5_file(dest / path) != md5:
            raise VersioningError(f"restored {path} does not match its md5 {md5} at {rev}")
    return written


def rollback(
    root: Path, rev: str, store: str, export: str, scratch: Path, url: str | None = None
) -> dict:
    """Make the forecasts that were current at run `rev` the current ones again.

    They are re-published from that run's own store (restored through DVC) into the live store
    with the publish's all-or-nothing transaction, together with that run's champion: the
    earlier run becomes the latest published one, its rows keep their original lineage and run
    key, and later runs stay in the store's history."""
    import polars as pl

    from flows.stages.publish import STAGE as PUBLISH
    from tasks.publishing.lineage import LINEAGE_FIELDS, utc_now
    from tasks.publishing.store import (
        FORECAST_COLUMNS,
        INTERVAL_COLUMNS,
        MODEL,
        STALE,
        list_runs,
        publish_forecasts,
        read_current,
        republish,
    )

    root = Path(root)
    restore_dir = Path(scratch)
    outs = lock_outputs(_lock_at(root, rev))
    if url is not None:
        return _rollback_server(root, rev, url, export, restore_dir, outs)
    if store not in outs:
        raise VersioningError(f"run {rev} has no {store} in its dvc.lock: nothing to roll back to")
    _restore_one(root, rev, store, restore_dir / store)
    old = read_current(restore_dir / store)
    if old.height == 0:
        raise VersioningError(f"run {rev} had no published forecasts")
    # The run `rev` published: its own rows; the stale ones are earlier runs' kept forecasts.
    fresh = old.filter(~pl.col(STALE))
    key = str((fresh if fresh.height else old)["run_key"][0])
    # The rolled-back model becomes the champion again, so the next gate compares against it.
    also = _champion_files(root, rev, outs, restore_dir)
    journal = root / PUBLISH.path("publish_journal")
    live = root / store
    if live.exists() and key in set(list_runs(live)["run_key"].to_list()):
        # The live store keeps every run: that run becomes current again in place, with its
        # rows, lineage and stale series as stored (a kept row stays stale, not fresh).
        result = republish(live, key, root / export, utc_now(), also=also, journal=journal)
        current = result.pop("current")
        return {
            "rolled_back_to": rev,
            "model_version": str(current["model_version"][0]),
            "champion_restored": bool(also),
            **result,
        }
    # A live store without that run (replaced since): its own rows are published again under
    # their lineage; the stale rows it kept are not revived as fresh forecasts.
    lineage = {f: str(fresh[f][0]) for f in LINEAGE_FIELDS}
    lineage["published_at"] = utc_now()
    lineage["run_key"] = key  # the stored run, not a new one
    # Intervals and the producing model travel with their forecasts (a store from before
    # intervals has none).
    extra = (*INTERVAL_COLUMNS, MODEL)
    columns = [*FORECAST_COLUMNS, *(c for c in extra if c in fresh.columns)]
    result = publish_forecasts(
        fresh.select(columns), lineage, live, root / export, also=also, journal=journal
    )
    return {
        "rolled_back_to": rev,
        "model_version": lineage["model_version"],
        "champion_restored": bool(also),
        **result,
    }


def _champion_files(root: Path, rev: str, outs, restore_dir: Path) -> list:
    """(target, fill) pairs putting back the champion recorded at `rev` (the rolled-back model
    becomes the champion again, so the next gate compares against it)."""
    from flows.stages.publish import STAGE as PUBLISH

    also = []
    for key in ("champion_model", "champion_meta"):
        path = str(PUBLISH.path(key))
        if path in outs:
            _restore_one(root, rev, path, restore_dir / path)
            also.append(
                (root / path, lambda tmp, src=restore_dir / path: shutil.copyfile(src, tmp))
            )
    return also


def _rollback_server(root: Path, rev: str, url: str, export: str, restore_dir: Path, outs) -> dict:
    """With a server store every run is still in the database: the run `rev` published (its
    manifest, a DVC out) becomes the current one again, in place."""
    from flows.stages.publish import STAGE as PUBLISH
    from tasks import catalog
    from tasks.publishing.db import Database
    from tasks.publishing.lineage import utc_now
    from tasks.publishing.store import republish

    manifest = catalog.entry("publish_manifest").path
    if manifest not in outs:
        raise VersioningError(
            f"run {rev} has no {manifest} in its dvc.lock: nothing to roll back to"
        )
    _restore_one(root, rev, manifest, restore_dir / manifest)
    key = json.loads((restore_dir / manifest).read_text())["run_key"]
    also = _champion_files(root, rev, outs, restore_dir)
    result = republish(
        Database.from_url(url),
        key,
        root / export,
        utc_now(),
        also=also,
        journal=root / PUBLISH.path("publish_journal"),
        manifest_path=root / manifest,
    )
    current = result.pop("current")
    return {
        "rolled_back_to": rev,
        "model_version": str(current["model_version"][0]) if current.height else "-",
        "champion_restored": bool(also),
        **result,
    }


def _restore_one(root: Path, rev: str, path: str, target: Path) -> None:
    from dvc.repo import Repo

    from flows.dvc import call
    from flows.repolock import RepositoryLocked

    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        config = _remote_config(root)
        call(root, lambda repo: repo.fetch(revs=[rev], workspace=False, config=config))
        # A past revision's Repo reads git objects: it takes no lock.
        with Repo(str(root), rev=rev, config=config) as repo:
            repo.dvcfs.get_file(path, str(target))
    except RepositoryLocked:
        raise
    except Exception as err:
        raise VersioningError(f"cannot restore {path} of {rev}: {err}") from err
