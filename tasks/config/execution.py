"""`execution`: where the per-series work runs (tasks/evaluation/distributed.py, docs/scale.md).

No stage lists it among its params: both engines give the same results (tested to 1e-9), so
moving a run onto a cluster or back reruns nothing.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# tcp://10.0.0.5:8786, tls://sched.internal:8786, tcp://[::1]:8786
_ADDRESS = re.compile(r"^(tcp|tls)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):\d{1,5}$")


class ExecutionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, str_max_length=4096)

    # local: every core of this machine (StatsForecast's processes); dask: the statistical fits,
    # partitioned by series, on the workers of the Dask scheduler at `address`.
    engine: Literal["local", "dask"] = "local"
    address: str | None = None
    # How long to try the scheduler before the run stops (exit 2, naming the address).
    connect_timeout_s: float = Field(default=10.0, gt=0.0, le=600.0)
    # A cluster left without any worker fails the stage after this long instead of waiting.
    no_workers_timeout_s: float = Field(default=300.0, gt=0.0)

    @model_validator(mode="after")
    def _address(self) -> ExecutionConfig:
        if self.address is not None and not _ADDRESS.match(self.address):
            raise ValueError(
                f"execution.address must be a Dask scheduler address like tcp://10.0.0.5:8786 "
                f"(tcp:// or tls://, host, port), got {self.address!r}"
            )
        if self.engine == "dask" and self.address is None:
            raise ValueError(
                "execution.engine: dask needs execution.address, the Dask scheduler "
                "(e.g. tcp://10.0.0.5:8786)"
            )
        return self
