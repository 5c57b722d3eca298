"""Stage logic of the forecasting pipeline: pure functions; file I/O sits in `flows.stages`."""
