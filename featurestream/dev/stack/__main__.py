"""`python -m featurestream.dev.stack up|down|status|env [SERVICE...]`."""

from __future__ import annotations

import sys

from featurestream.dev.stack.cli import main

sys.exit(main())
