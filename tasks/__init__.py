"""Stage logic of the forecasting pipeline: pure functions, file I/O only in `tasks.io` and the stage runners."""
