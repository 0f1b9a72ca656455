"""The qrlogin command: serve, migrate, and create users."""

from __future__ import annotations

import argparse
import asyncio
import gc
import getpass
import logging
import multiprocessing
import os
import signal
import sys

from aiohttp import web

from server.settings import ConfigError, Settings, load_settings

log = logging.getLogger("server")


def _serve_one(settings: Settings, *, reuse_port: bool, migrate: bool) -> None:
    """Run one server process until it is told to stop."""
    from server.app import create_app
    from server.logs import setup_logging

    setup_logging(settings.log_level)
    app = create_app(settings, migrate=migrate)
    app.on_startup.append(_freeze_startup_objects)
    log.info("listening on %s:%d (pid %d)", settings.host, settings.port, os.getpid())
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        reuse_port=reuse_port,
        print=None,
        access_log=None,
        shutdown_timeout=5,
        handler_cancellation=True,
    )


async def _freeze_startup_objects(app: web.Application) -> None:
    """Once started, move everything built so far out of the collector's way.

    Modules, templates, parser rules and the services live as long as the process;
    frozen, they are no longer scanned by every full collection, which otherwise
    runs now and then in the middle of a request (the tail of the push latency).
    """
    gc.collect()
    gc.freeze()


async def _migrate(settings: Settings) -> None:
    from server.database import create_engine, upgrade

    engine = create_engine(settings)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


def serve(settings: Settings, workers: int) -> int:
    """Serve on one port with one or more processes."""
    if workers < 1:
        raise ConfigError("--workers must be at least 1")
    if workers > 1 and not settings.broker_url:
        raise ConfigError(
            "--workers above 1 needs Redis (QRLOGIN_BROKER_URL): the memory broker "
            "lives inside one process, so workers could not see each other's sessions"
        )
    if workers == 1:
        _serve_one(settings, reuse_port=False, migrate=settings.is_development)
        return 0

    if settings.is_development:
        asyncio.run(_migrate(settings))
    context = multiprocessing.get_context("spawn")
    children = [
        context.Process(
            target=_serve_one,
            args=(settings,),
            kwargs={"reuse_port": True, "migrate": False},
        )
        for _ in range(workers)
    ]
    for child in children:
        child.start()

    def stop(signum: int, _frame: object) -> None:
        for child in children:
            if child.is_alive() and child.pid is not None:
                os.kill(child.pid, signal.SIGINT)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for child in children:
        child.join()
    return max((child.exitcode or 0) for child in children)


def create_user(settings: Settings, args: argparse.Namespace) -> int:
    """qrlogin users create / staff create: add an account from the command line."""
    from server.app import create_app
    from server.errors import AppError
    from server.keys import AUTH

    password = args.password or os.environ.get("QRLOGIN_NEW_PASSWORD")
    if not password:
        password = getpass.getpass("Password: ")

    async def run() -> int:
        app = create_app(settings, migrate=settings.is_development)
        runner = web.AppRunner(app)
        await runner.setup()
        try:
            user = await app[AUTH].create_user(
                username=args.username,
                password=password,
                phone=args.phone,
                display_name=args.display_name or "",
                user_type=getattr(args, "user_type", "individual"),
                is_staff=args.command == "staff",
            )
        except AppError as err:
            print(
                f"error: {err.code}: {err.message} {err.details or ''}", file=sys.stderr
            )
            return 1
        finally:
            await runner.cleanup()
        role = "staff member" if user.is_staff else "user"
        print(f"created {role} {user.id} {user.username}")
        return 0

    return asyncio.run(run())


def seed_programs(settings: Settings, days: int) -> int:
    """qrlogin programs seed: add the 高精尖 program, its guide and short link."""
    from server.app import create_app
    from server.keys import ZONE

    async def run() -> int:
        app = create_app(settings, migrate=settings.is_development)
        runner = web.AppRunner(app)
        await runner.setup()
        try:
            created = await app[ZONE].seed(days=days)
        finally:
            await runner.cleanup()
        print(f"seeded {created}" if created else "nothing to seed: it is all there")
        return 0

    return asyncio.run(run())


def settings_table(settings: Settings) -> str:
    """A Markdown table of the settings in force; secrets show masked."""
    lines = ["| Variable | Default | Current | What it does |", "|---|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.default
        current = getattr(settings, name)
        if hasattr(default, "get_secret_value"):
            default = "(development key)" if default.get_secret_value() else ""
        if hasattr(current, "get_secret_value"):
            current = "(set)" if current.get_secret_value() else ""
        shown = [
            str(getattr(v, "value", v)) if v != "" else "(empty)"
            for v in (default, current)
        ]
        lines.append(
            f"| `QRLOGIN_{name.upper()}` | `{shown[0]}` | `{shown[1]}` | {field.description} |"
        )
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    """The command line."""
    top = argparse.ArgumentParser(prog="qrlogin", description=__doc__)
    commands = top.add_subparsers(dest="command", required=True)

    serve_cmd = commands.add_parser("serve", help="run the server")
    serve_cmd.add_argument("--host", help="override QRLOGIN_HOST")
    serve_cmd.add_argument("--port", type=int, help="override QRLOGIN_PORT")
    serve_cmd.add_argument(
        "--workers", type=int, default=1, help="processes on one port"
    )

    commands.add_parser("migrate", help="bring the database schema up to date")
    commands.add_parser("settings", help="print every setting: value, default and help")
    standin = commands.add_parser(
        "standin-oauth", help="run the stand-in 微信/微博/QQ login server (development)"
    )
    standin.add_argument("--host", default="127.0.0.1", help="address to listen on")
    standin.add_argument("--port", type=int, default=9100, help="port to listen on")
    identity = commands.add_parser(
        "standin-identity",
        help="run the stand-in 一证通 (北京市统一身份认证平台) provider (development)",
    )
    identity.add_argument("--host", default="127.0.0.1", help="address to listen on")
    identity.add_argument("--port", type=int, default=9200, help="port to listen on")
    identity.add_argument("--data", help="SQLite file for its data; memory if left out")
    identity.add_argument("--issuer", help="public URL; default http://HOST:PORT")
    identity.add_argument("--client-id", help="the client it knows (qrlogin-portal)")
    identity.add_argument("--client-secret", help="that client's secret")
    identity.add_argument(
        "--redirect-uri",
        action="append",
        help="allowed redirect URI prefix (repeatable)",
    )

    users = commands.add_parser("users", help="manage accounts")
    users_commands = users.add_subparsers(dest="action", required=True)
    create = users_commands.add_parser("create", help="create an account")
    create.add_argument("--username", required=True)
    create.add_argument("--phone")
    create.add_argument("--password", help="prompted for when left out")
    create.add_argument("--display-name")
    create.add_argument(
        "--user-type", default="individual", choices=["individual", "enterprise"]
    )

    staff = commands.add_parser("staff", help="manage platform staff accounts")
    staff_commands = staff.add_subparsers(dest="action", required=True)
    staff_create = staff_commands.add_parser("create", help="create a staff account")
    staff_create.add_argument("--username", required=True)
    staff_create.add_argument("--phone")
    staff_create.add_argument("--password", help="prompted for when left out")
    staff_create.add_argument("--display-name")
    programs = commands.add_parser("programs", help="manage the declaration zone")
    programs_commands = programs.add_subparsers(dest="action", required=True)
    seed = programs_commands.add_parser(
        "seed",
        help="add 北京市高精尖产业发展资金申报, its guide and short link (idempotent)",
    )
    seed.add_argument("--days", type=int, default=90, help="days the window stays open")
    return top


def main(argv: list[str] | None = None) -> int:
    """Entry point of the qrlogin console script."""
    from server.logs import setup_logging

    args = parser().parse_args(argv)
    setup_logging("INFO")
    try:
        overrides = {}
        if getattr(args, "host", None):
            overrides["host"] = args.host
        if getattr(args, "port", None) is not None:
            overrides["port"] = args.port
        settings = load_settings(**overrides)
        settings.check_production()
        if args.command == "serve":
            return serve(settings, args.workers)
        if args.command == "standin-oauth":
            from server.standin.oauth import serve_standin

            return serve_standin(settings, host=args.host, port=args.port)
        if args.command == "standin-identity":
            from server.standin.identity import serve_identity_standin

            return serve_identity_standin(
                settings,
                host=args.host,
                port=args.port,
                data=args.data,
                issuer=args.issuer,
                client_id=args.client_id,
                client_secret=args.client_secret,
                redirect_uris=args.redirect_uri,
            )
        if args.command == "settings":
            print(settings_table(settings))
            return 0
        if args.command == "migrate":
            asyncio.run(_migrate(settings))
            print("database is up to date")
            return 0
        if args.command == "programs":
            return seed_programs(settings, args.days)
        return create_user(settings, args)
    except ConfigError as err:
        print(f"qrlogin: {err}", file=sys.stderr)
        return 2
