"""Small readers of the Prefect REST API for the tests (plain httpx: what the UI itself calls)."""

from __future__ import annotations

import time

import httpx

from tests.waits import HANG_S

TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


# Prefect's own client retries these with back-off (a busy SQLite database answers 503: the
# request was rolled back, so sending it again is safe); the tests' requests do the same.
RETRY_STATUS = {429, 502, 503}
RETRIES = 6


def _request(method: str, url: str, **kwargs) -> list | dict:
    for attempt in range(RETRIES):
        # A hang guard: a busy server on busy cores may take long to answer one request.
        resp = httpx.request(method, url, timeout=HANG_S, **kwargs)
        if resp.status_code not in RETRY_STATUS or attempt == RETRIES - 1:
            break
        time.sleep(0.5 * 2**attempt)
    resp.raise_for_status()
    return resp.json()


def post(api: str, path: str, body: dict | None = None) -> list | dict:
    return _request("POST", f"{api}{path}", json=body or {})


def get(api: str, path: str, **params) -> list | dict:
    return _request("GET", f"{api}{path}", params=params)


def flow_run(api: str, run_id: str) -> dict:
    return get(api, f"/flow_runs/{run_id}")


def flow_runs(api: str, flow_name: str) -> list[dict]:
    body = {"flows": {"name": {"any_": [flow_name]}}, "sort": "START_TIME_DESC"}
    return post(api, "/flow_runs/filter", body)


def task_runs(api: str, flow_run_id: str) -> list[dict]:
    return post(api, "/task_runs/filter", {"flow_runs": {"id": {"any_": [flow_run_id]}}})


def states(api: str, flow_run_id: str) -> list[dict]:
    return get(api, "/flow_run_states/", flow_run_id=flow_run_id)


def artifacts(api: str, flow_run_id: str) -> dict[str, dict]:
    found = post(api, "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}})
    return {a["key"]: a for a in found}


def events(api: str, name: str) -> list[dict]:
    body = {"filter": {"event": {"name": [name]}, "any_resource": None}, "limit": 50}
    return post(api, "/events/filter", body)["events"]


def wait_event(api: str, name: str, resource_part: str, timeout: float = HANG_S) -> dict:
    """The event `name` whose resource id contains `resource_part`; the server persists events
    asynchronously (in batches), so poll instead of asking once."""
    deadline = time.monotonic() + timeout
    while True:
        found = [
            e for e in events(api, name) if resource_part in e["resource"]["prefect.resource.id"]
        ]
        if found:
            return found[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"no {name} event for {resource_part} within {timeout} s")
        time.sleep(1)


def wait_terminal(api: str, run_ids: list[str], timeout: float = HANG_S) -> dict[str, dict]:
    deadline = time.monotonic() + timeout
    while True:
        runs = {rid: flow_run(api, rid) for rid in run_ids}
        if all(r["state_type"] in TERMINAL for r in runs.values()):
            return runs
        if time.monotonic() > deadline:
            raise AssertionError(
                "runs not finished in time: "
                + ", ".join(f"{r['name']} {r['state_name']}" for r in runs.values())
            )
        time.sleep(1)
