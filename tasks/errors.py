"""Errors a user can act on. The stage entry points print them without a traceback and exit 2."""

from __future__ import annotations


class PipelineError(Exception):
    """Base of every expected, user-fixable failure."""


class ConfigError(PipelineError, ValueError):
    """params.yaml is missing, unreadable or holds an invalid value."""


class DataError(PipelineError):
    """The raw source cannot be read or fails validation."""


class DataSourceError(DataError):
    """The source path is missing, empty, of an unknown format or lacks required columns."""


class SourceUnavailable(DataSourceError):
    """The source is not there or the system could not read it (a mount, an upstream export not
    landed yet): worth retrying. A source that is there but malformed (empty, wrong delimiter,
    not Parquet, columns missing) is a plain DataSourceError: retrying cannot fix it."""


class SourceMismatch(DataSourceError):
    """The source's columns do not match params.yaml (data.columns, data.covariates). Found from
    the header alone, before any stage runs; says what, where and the fix apart, so that the
    command line can print them as one block."""

    def __init__(self, what: str, where: str, fix: str):
        super().__init__(f"{where}: {what}. Fix: {fix}")
        self.what, self.where, self.fix = what, where, fix

    def block(self) -> str:
        return f"  what:  {self.what}\n  where: {self.where}\n  fix:   {self.fix}"


class DataValidationError(DataError):
    """Rows failed validation; `failures` holds one row per failing (check, row)."""

    def __init__(self, report: str, failures=None):
        super().__init__(report)
        self.failures = failures


class GateFailed(PipelineError):
    """The evaluation gate rejected the model: nothing was published."""
