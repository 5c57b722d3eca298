"""Column names of the long format, defined once for every stage."""

SERIES_ID = "series_id"
TIMESTAMP = "timestamp"
VALUE = "value"

KEY = (SERIES_ID, TIMESTAMP)
REQUIRED = (SERIES_ID, TIMESTAMP, VALUE)
