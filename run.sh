#!/usr/bin/env bash
# The project's two entry points, on a machine that has only Python 3.11 and pip:
#   ./run.sh pipeline   install the locked environment, run the five stages on the bundled data
#   ./run.sh test       install the locked environment (and test-only system packages: chromium,
#                       postgresql), run the tests
# Anything else runs inside the locked environment: ./run.sh forecast --help (every user action,
# flows/cli.py), ./run.sh dvc repro, ./run.sh prefect server start
# TensorFlow: the CPU wheel, or the GPU one (CUDA wheels included) when `nvidia-smi -L` lists a
# GPU; FORECAST_GPU=1|0 overrides. `./run.sh variant` prints which, installing nothing.
set -euo pipefail
cd "$(dirname "$0")"

UV_VERSION=0.13.8

# `python3 -m uv` works wherever pip put uv (user site, a pyenv version without shims, a venv).
uv() { python3 -m uv "$@"; }

# The locked environment's TensorFlow variant (pyproject.toml: dependency groups `cpu`, `gpu`).
variant() {
  local gpu="${FORECAST_GPU:-}"
  if [ -z "$gpu" ]; then
    # A driver without a GPU, or a broken one, lists none ("No devices found" or an error).
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU [0-9]'; then
      gpu=1
    else
      gpu=0
    fi
  fi
  case "$gpu" in
    1) echo gpu ;;
    0) echo cpu ;;
    *)
      echo "FORECAST_GPU must be 0 (CPU TensorFlow) or 1 (GPU TensorFlow), got '$gpu'" >&2
      exit 64
      ;;
  esac
}
VARIANT="$(variant)"
if [ "$VARIANT" = gpu ]; then
  UV_GROUPS=(--no-group cpu --group gpu)
else
  UV_GROUPS=() # the default groups: dev, cpu
fi

ensure_env() {
  if ! python3 -m uv --version >/dev/null 2>&1; then
    python3 -m pip install --quiet --disable-pip-version-check "uv==${UV_VERSION}"
  fi
  # --frozen: exactly the versions in uv.lock, never a re-resolution.
  # --compile-bytecode: every installed module's .pyc written once, here (30-45 s for a new
  # environment on 2 cores, 1 s when they are there). Without it, where PYTHONDONTWRITEBYTECODE is
  # set (as on this project's machines) every process compiles all it imports, every time: on a
  # busy 2-core machine importing TensorFlow and Keras took 12.5 s instead of 5 s, and the six
  # stages of a tiny pipeline 63 s instead of 22 s.
  uv sync --frozen --quiet --compile-bytecode ${UV_GROUPS[@]+"${UV_GROUPS[@]}"}
}

# The UI test (tests/ui) drives headless Chromium through chromedriver (Debian packages): installed
# here when missing and running as root; otherwise that test fails and names what to install.
ensure_browser() {
  if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    return
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium and chromium-driver for the UI test (apt-get)" >&2
    # Without the registry apt-get fails halfway with its own messages (or "Unable to locate
    # package" from stale lists): stop with one line that says what to do instead.
    if ! apt-get update -qq ||
      ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; then
      echo "cannot install chromium for the UI test (tests/ui): network/registry unreachable;" \
        "install chromium and chromium-driver by hand" >&2
      exit 1
    fi
  else
    echo "WARNING: chromium/chromedriver missing and not root: tests/ui will fail" >&2
  fi
}

# The store tests run against a real PostgreSQL server they start (tests/pgserver.py): Debian's
# `postgresql` package, installed here when its server binaries are missing and running as root
# (the tests fail, naming the package, where it is missing; they never skip silently).
ensure_postgres() {
  if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    return
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing postgresql for the store tests (apt-get)" >&2
    if ! apt-get update -qq ||
      ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; then
      echo "cannot install postgresql for the store tests: network/registry unreachable;" \
        "install the postgresql package by hand" >&2
      exit 1
    fi
  else
    echo "WARNING: PostgreSQL server binaries missing and not root: the store tests will fail" >&2
  fi
}

case "${1:-}" in
  pipeline)
    shift
    ensure_env
    # A Prefect flow over the five stages; DVC records every stage it runs in dvc.lock.
    # `forecast pipeline` (flows/cli.py): exit 2 bad params, 3 gate refused; --json, --force.
    uv run --frozen ${UV_GROUPS[@]+"${UV_GROUPS[@]}"} forecast pipeline "$@"
    ;;
  test)
    shift
    ensure_env
    ensure_browser
    ensure_postgres
    # Two pytest workers (pytest-xdist): the suite is mostly single-threaded Python and process
    # start-up, so the two cores of a developer machine share it; the costliest session fixture
    # is built once for both (tests/conftest.py). PYTEST_WORKERS=0 runs it in one process.
    # --dist worksteal: an idle worker takes queued tests from the busy one, so the long pipeline
    # tests do not pile up on one worker at the end (measured: tests/README.md). --durations: every
    # run, CI's too, ends with the 25 slowest, so the suite's time stays visible.
    uv run --frozen ${UV_GROUPS[@]+"${UV_GROUPS[@]}"} pytest -n "${PYTEST_WORKERS:-2}" \
      --dist worksteal --durations=25 "$@"
    ;;
  variant)
    echo "$VARIANT"
    ;;
  "")
    sed -n '2,8p' "$0"
    exit 64
    ;;
  *)
    ensure_env
    uv run --frozen ${UV_GROUPS[@]+"${UV_GROUPS[@]}"} "$@"
    ;;
esac
