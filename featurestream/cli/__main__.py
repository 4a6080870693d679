"""`python -m featurestream.cli ...`, the same as the `featurestream` command."""

import sys

from featurestream.cli import main

sys.exit(main())
