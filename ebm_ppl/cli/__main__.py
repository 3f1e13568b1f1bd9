"""``python -m ebm_ppl.cli``."""

import sys

from ebm_ppl.cli import main

sys.exit(main())
