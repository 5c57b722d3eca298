"""Where each stage writes its outputs (dvc.yaml lists the same paths as outs/metrics/plots)."""

from pathlib import Path

VALIDATED = Path("data/validated/series.parquet")
PREPARED = Path("data/prepared/arrays.npz")
SCALER = Path("models/scaler.pkl")
MODEL = Path("models/model.keras")
CHECKPOINTS = Path("checkpoints")  # best-weights checkpoints; scratch, not a DVC output
HISTORY = Path("plots/training_curve.csv")
TEST_FORECAST = Path("plots/test_forecast.csv")

METRICS_INGEST = Path("metrics/ingest.json")
METRICS_TRAIN = Path("metrics/train.json")
METRICS_EVALUATE = Path("metrics/evaluate.json")
METRICS_GATE = Path("metrics/gate.json")
METRICS_PUBLISH = Path("metrics/publish.json")
