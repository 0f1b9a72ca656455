"""Logging set-up and the fingerprint helper that keeps secrets out of the logs."""

from __future__ import annotations

import hashlib
import logging
import sys


def setup_logging(level: str) -> None:
    """Send every server.* logger to stderr, one line each."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s %(process)d %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiohttp.access", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def fingerprint(secret: str) -> str:
    """A short, stable, non-reversible tag for a token, safe to log."""
    return hashlib.sha256(secret.encode()).hexdigest()[:10]
