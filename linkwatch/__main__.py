"""`python -m linkwatch` is the `linkwatch` command."""

import sys

from linkwatch.cli import main

sys.exit(main())
