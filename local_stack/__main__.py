"""`python -m local_stack up|down|status|env [SERVICE...]`."""

from __future__ import annotations

import sys

from local_stack.cli import main

sys.exit(main())
