#!/usr/bin/env bash
# The environment of the deep-learning peers (benchmarks/neural_peers.py: neuralforecast NHITS and
# LSTM on torch's CPU build): a venv outside the repository ($FORECAST_PEERS_VENV, default
# ~/.cache/forecast-benchmarks/venv-peers: inside it, the layout tests and the stage scanners would
# read torch's sources), built with pip from the pinned benchmarks/requirements-peers.txt. Apart from the project's uv environment on purpose: uv would
# resolve torch from PyPI (a CUDA build, about 3 GB) into uv.lock, which CI and every user sync;
# pip on Python 3.11 here takes the CPU build of torch 2.13.0 from the machine's wheel directory.
# benchmarks/m3_test.py calls this when the venv is missing or its requirements changed (a stamp
# file holds the hash of the requirements it was built from). Idempotent.
set -euo pipefail
cd "$(dirname "$0")"
VENV="${FORECAST_PEERS_VENV:-$HOME/.cache/forecast-benchmarks/venv-peers}"
REQ=requirements-peers.txt
mkdir -p "$(dirname "$VENV")"
STAMP="$VENV/requirements.sha256"
want="$(sha256sum "$REQ" | cut -d' ' -f1)"
if [ -x "$VENV/bin/python" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
rm -rf "$VENV"
"${PYTHON:-python3}" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQ"
"$VENV/bin/python" -c "import neuralforecast, torch; print('peers env:', '$VENV', 'neuralforecast', neuralforecast.__version__, 'torch', torch.__version__)"
echo "$want" >"$STAMP"
