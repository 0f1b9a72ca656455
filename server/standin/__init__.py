"""Stand-ins for outside services, so development and tests need no real accounts.

Each runs as its own process on its own port, the way the real service would.
"""
