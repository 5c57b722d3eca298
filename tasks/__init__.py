"""Stage logic of the forecasting pipeline: pure functions; file I/O sits in `flows.stages`."""

from tasks import tflog

# Before anything imports TensorFlow: its C++ log noise stays off the terminal (tasks/tflog.py).
tflog.quiet()
