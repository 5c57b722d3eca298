#!/usr/bin/env bash
# The project's two entry points, on a machine that has only Python 3.11 and pip:
#   ./run.sh pipeline   install the locked environment, run the five stages on the bundled data
#   ./run.sh test       install the locked environment (and test-only system packages), run the tests
# Anything else runs inside the locked environment: ./run.sh dvc repro, ./run.sh prefect server start
set -euo pipefail
cd "$(dirname "$0")"

UV_VERSION=0.13.8

ensure_env() {
  if ! command -v uv >/dev/null 2>&1; then
    python3 -m pip install --quiet "uv==${UV_VERSION}"
    export PATH="$(python3 -m site --user-base)/bin:$PATH"
  fi
  # --frozen: exactly the versions in uv.lock, never a re-resolution.
  uv sync --frozen --quiet
}

case "${1:-}" in
  pipeline)
    shift
    ensure_env
    # A Prefect flow over the five stages; DVC records every stage it runs in dvc.lock.
    exec uv run --frozen python -m flows.pipeline "$@"
    ;;
  test)
    shift
    ensure_env
    exec uv run --frozen pytest "$@"
    ;;
  "")
    sed -n '2,5p' "$0"
    exit 64
    ;;
  *)
    ensure_env
    exec uv run --frozen "$@"
    ;;
esac
