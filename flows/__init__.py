"""Prefect flows: one per stage (`flows.stages`) and the chained pipeline (`flows.pipeline`).

Importing this package (every `python -m flows.*` entry point does, before anything else) tells
polars' bundled allocator, jemalloc, to hand freed pages back to the OS at once. polars' own
setting lets them decay over 0.5-1 s, but only while the allocator is busy, so in a process that
runs stage after stage what one stage freed stays resident through the next: at 10M rows
(benchmarks/scale.py) ingest's and prepare's freed buffers kept about 300 MiB resident through
evaluate, above the memory budget. polars reads the variable when it is first imported and
appends it to its defaults; a value already in the environment wins.
"""

import os

JEMALLOC_ENV = "_RJEM_MALLOC_CONF"  # polars' jemalloc is built with the `_rjem_` prefix
JEMALLOC_CONF = "dirty_decay_ms:0,muzzy_decay_ms:0"

os.environ.setdefault(JEMALLOC_ENV, JEMALLOC_CONF)
