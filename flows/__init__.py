"""Prefect flows: one per stage (`flows.stages`) and the chained pipeline (`flows.pipeline`)."""
