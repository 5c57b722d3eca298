"""How long a test waits before it calls a subprocess or a server hung.

Every wait in the suite is a hang guard, never a speed check (speed is measured in benchmarks/):
it must not fire on a machine that is merely busy. Measured: importing TensorFlow in a new
process took over 120 s on these 2 cores at load 8-13, and a Prefect server 61-150 s to start;
a tiny pipeline run that takes 40 s idle took several minutes there. So one generous bound, well
past any busy-machine figure seen, and well under pytest-timeout's per-test limit (pyproject.toml),
which stays the last resort for a test that hangs without a wait of its own.
"""

HANG_S = 900


def stop(proc) -> None:
    """Terminate a process a test started and wait for it (a Prefect `serve` shuts down its
    runner first: seconds idle, far longer on busy cores); killed only past the hang guard."""
    import subprocess

    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=HANG_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
