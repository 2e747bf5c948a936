"""`python -m oversight.analysis PATH`: see `oversight.analysis.command`."""

import sys

from oversight.analysis.command import main

if __name__ == "__main__":
    sys.exit(main())
