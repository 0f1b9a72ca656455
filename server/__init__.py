"""QR scan-to-login and notification server."""

__version__ = "0.1.0"
