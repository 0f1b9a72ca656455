"""Several server processes on one Redis and one PostgreSQL act as one server."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest
import websockets

from tests.conftest import (
    PG_URL,
    REDIS_URL,
    clean_postgres,
    clean_redis,
    free_port,
    prepare_postgres,
)

pytestmark = pytest.mark.slow

ENV = {
    **os.environ,
    "QRLOGIN_DATABASE_URL": PG_URL,
    "QRLOGIN_BROKER_URL": REDIS_URL,
    "QRLOGIN_LOG_LEVEL": "WARNING",
}


def qrlogin(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the qrlogin command line and capture what it says."""
    return subprocess.run(
        [sys.executable, "-m", "server", *args],
        env=env or ENV,
        capture_output=True,
        text=True,
        timeout=60,
    )


@asynccontextmanager
async def server(port: int, *extra: str) -> AsyncIterator[str]:
    """A `qrlogin serve` process on port, ready to answer."""
    env = {
        **ENV,
        "QRLOGIN_PORT": str(port),
        "QRLOGIN_PUBLIC_URL": f"http://127.0.0.1:{port}",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "server", "serve", *extra],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(150):
                try:
                    async with http.get(f"{base}/readyz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                if process.poll() is not None:
                    raise AssertionError(
                        process.stderr.read() if process.stderr else "exited"
                    )
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("server did not become ready")
        yield base
    finally:
        process.terminate()
        try:
            await asyncio.to_thread(process.wait, 10)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait)
        if process.stderr is not None:
            process.stderr.close()


@pytest.fixture
async def shared_backends() -> None:
    await prepare_postgres()
    await clean_postgres()
    await clean_redis()
    created = await asyncio.to_thread(
        qrlogin,
        "users",
        "create",
        "--username",
        "alice",
        "--phone",
        "13800138000",
        "--password",
        "correct horse battery",
        "--display-name",
        "张小三",
    )
    assert created.returncode == 0, created.stderr


async def test_push_crosses_nodes(shared_backends: None) -> None:
    """Page on node A, phone on node B: the confirm reaches the page through Redis."""
    port_a, port_b = free_port(), free_port()
    async with (
        server(port_a) as node_a,
        server(port_b) as node_b,
        aiohttp.ClientSession() as http,
    ):
        async with http.post(f"{node_a}/api/qr/sessions", json={}) as response:
            session = await response.json()
        async with websockets.connect(session["ws_url"]) as ws:
            await ws.send(json.dumps({"type": "auth", "token": session["watch_token"]}))
            assert json.loads(await ws.recv())["state"] == "pending"

            login = {"account": "alice", "password": "correct horse battery"}
            async with http.post(f"{node_b}/api/app/login", json=login) as response:
                auth = {"Authorization": f"Bearer {(await response.json())['token']}"}
            for action in ("scan", "confirm"):
                url = f"{node_b}/api/app/qr/{session['id']}/{action}"
                async with http.post(url, headers=auth) as response:
                    assert response.status == 200, await response.text()
            scanned = json.loads(await asyncio.wait_for(ws.recv(), 5))
            confirmed = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert (scanned["state"], confirmed["state"]) == ("scanned", "confirmed")

            watch = {"Authorization": f"Bearer {session['watch_token']}"}
            url = f"{node_b}/api/qr/sessions/{session['id']}/redeem"
            async with http.post(
                url, json={"ticket": confirmed["ticket"]}, headers=watch
            ) as r:
                assert r.status == 200
            assert (
                json.loads(await asyncio.wait_for(ws.recv(), 5))["state"] == "consumed"
            )


async def test_notifications_cross_nodes(shared_backends: None) -> None:
    """A socket on node A gets a notification caused on node B."""
    port_a, port_b = free_port(), free_port()
    login = {"account": "alice", "password": "correct horse battery"}
    async with (
        server(port_a) as node_a,
        server(port_b) as node_b,
        aiohttp.ClientSession() as http,
    ):
        async with http.post(f"{node_a}/api/app/login", json=login) as response:
            token_a = (await response.json())["token"]
        async with http.post(f"{node_b}/api/app/login", json=login) as response:
            token_b = (await response.json())["token"]
        ws_url = node_a.replace("http", "ws") + "/ws"
        async with websockets.connect(ws_url) as ws:
            await ws.send(json.dumps({"type": "auth", "token": token_a}))
            assert json.loads(await ws.recv())["type"] == "ready"
            change = {
                "old_password": "correct horse battery",
                "new_password": "another fine secret",
            }
            url = f"{node_b}/api/me/password"
            headers = {"Authorization": f"Bearer {token_b}"}
            async with http.post(url, json=change, headers=headers) as response:
                assert response.status == 200, await response.text()
            frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert frame["notification"]["title"] == "密码已修改"


async def test_workers_share_one_port(shared_backends: None) -> None:
    """`serve --workers 2` answers from two processes on one port."""
    port = free_port()
    async with server(port, "--workers", "2") as base, aiohttp.ClientSession() as http:
        pids = set()
        for _ in range(60):
            async with aiohttp.ClientSession() as fresh:  # new connection each time
                async with fresh.get(f"{base}/healthz") as response:
                    pids.add((await response.json())["pid"])
            if len(pids) == 2:
                break
        assert len(pids) == 2


def test_workers_refuse_the_memory_broker() -> None:
    env = {k: v for k, v in ENV.items() if k != "QRLOGIN_BROKER_URL"}
    result = qrlogin("serve", "--workers", "2", env=env)
    assert result.returncode == 2
    assert "memory broker" in result.stderr


def test_production_refuses_embedded_backends_and_says_why() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QRLOGIN_")}
    result = qrlogin("serve", env={**env, "QRLOGIN_MODE": "production"})
    assert result.returncode == 2
    for reason in ("QRLOGIN_DATABASE_URL", "QRLOGIN_BROKER_URL", "QRLOGIN_SECRET_KEY"):
        assert reason in result.stderr


def test_users_create_reports_a_taken_username(shared_backends: None) -> None:
    again = qrlogin(
        "users", "create", "--username", "alice", "--password", "another password"
    )
    assert again.returncode == 1
    assert "taken" in again.stderr


def test_migrate_command_is_idempotent(shared_backends: None) -> None:
    for _ in range(2):
        result = qrlogin("migrate")
        assert result.returncode == 0, result.stderr
