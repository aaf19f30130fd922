import sys

from marketdash.api.cli import main

sys.exit(main())
