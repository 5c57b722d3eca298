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


class DataValidationError(DataError):
    """Rows failed validation; `failures` holds one row per failing (check, row)."""

    def __init__(self, report: str, failures=None):
        super().__init__(report)
        self.failures = failures


class GateFailed(PipelineError):
    """The evaluation gate rejected the model: nothing was published."""
