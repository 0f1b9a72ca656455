"""Create the phone accounts that load tests log in with.

Run it with the same QRLOGIN_* variables as the server, so that it writes to the
same database::

    QRLOGIN_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/qrlogin_bench \\
        python -m loadtests.make_users --prefix bench --count 20 \\
        --password 'bench-password-1'

It is idempotent: accounts that already exist are left as they are. The last line
it prints is ``LOCUST_ACCOUNTS=...``, ready for the locustfile.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from aiohttp import web

DEFAULT_PASSWORD = "bench-password-1"
PHONE_PREFIX = "139"


def account_names(prefix: str, count: int) -> list[str]:
    """The usernames make_users creates: prefix0001, prefix0002, ..."""
    return [f"{prefix}{index:04d}" for index in range(1, count + 1)]


def phone_for(index: int, offset: int) -> str:
    """A mainland mobile number unique to one account (139 and eight digits)."""
    return f"{PHONE_PREFIX}{offset + index:08d}"


async def create_accounts(
    usernames: list[str], password: str, *, phone_offset: int = 0
) -> tuple[int, int]:
    """Create every username not yet taken; returns (created, already there).

    The server's own AuthService does the work, so passwords are hashed exactly
    as the server expects and the schema is migrated first in development mode.
    """
    from server.app import create_app
    from server.errors import Conflict
    from server.keys import AUTH
    from server.settings import load_settings

    settings = load_settings()
    app = create_app(settings, migrate=settings.is_development)
    runner = web.AppRunner(app)
    await runner.setup()
    created = existing = 0
    try:
        auth = app[AUTH]
        for index, username in enumerate(usernames, start=1):
            try:
                await auth.create_user(
                    username=username,
                    password=password,
                    phone=phone_for(index, phone_offset),
                    display_name=f"压测{index}",
                )
                created += 1
            except Conflict:
                existing += 1
    finally:
        await runner.cleanup()
    return created, existing


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--prefix", default="bench", help="username prefix (letters)")
    cli.add_argument("--count", type=int, default=20, help="how many accounts")
    cli.add_argument("--password", default=DEFAULT_PASSWORD, help="8 to 128 chars")
    cli.add_argument(
        "--phone-offset",
        type=int,
        default=0,
        help="added to the index in the generated phone numbers, to keep two "
        "prefixes in one database apart",
    )
    args = cli.parse_args(argv)
    if args.count < 1:
        cli.error("--count must be at least 1")
    usernames = account_names(args.prefix, args.count)
    created, existing = asyncio.run(
        create_accounts(usernames, args.password, phone_offset=args.phone_offset)
    )
    print(f"created {created} accounts, {existing} already existed", file=sys.stderr)
    print("LOCUST_ACCOUNTS=" + ",".join(usernames))
    return 0


if __name__ == "__main__":
    if __package__ in (None, ""):
        from pathlib import Path

        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.exit(main())
