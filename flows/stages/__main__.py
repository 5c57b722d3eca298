import sys

from flows.stages import main

sys.exit(main())
