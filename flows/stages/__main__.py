import logging
import sys

from flows.stages import main

# Logging is configured here, for the command line only: main() is also called in-process.
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
sys.exit(main())
