"""`python -m server` is the qrlogin command."""

import sys

from server.cli import main

sys.exit(main())
