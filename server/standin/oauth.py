"""A stand-in login server for 微信, 微博 and QQ, speaking plain OAuth 2.0.

It lets a developer click through third-party login, and the tests drive it, as
its own process with its own in-memory storage. Each provider has a fixed client
(client_id ``standin-<provider>``, secret ``standin-<provider>-secret``) and a few
built-in users to pick from. It checks what a real provider checks: the client,
the redirect URI, single use of codes, and the PKCE S256 verifier.
"""

from __future__ import annotations

import base64
import hmac
import html
import logging
import secrets
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

from aiohttp import web
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from server.settings import ConfigError, Settings

log = logging.getLogger(__name__)

CODE_TTL = 300.0
TOKEN_TTL = 3600.0

USERS: dict[str, dict[str, str]] = {
    "wechat": {"wx_alice": "爱丽丝", "wx_bob": "鲍勃", "wx_carol": "卡罗尔"},
    "weibo": {"wb_alice": "爱丽丝_微博", "wb_bob": "鲍勃_微博"},
    "qq": {"qq_alice": "爱丽丝QQ", "qq_bob": "鲍勃QQ"},
}
LABELS = {"wechat": "微信", "weibo": "微博", "qq": "QQ"}


def client_id(provider: str) -> str:
    """The one client the stand-in knows for provider."""
    return f"standin-{provider}"


def client_secret(provider: str) -> str:
    """That client's secret; not a secret, since the stand-in guards nothing."""
    return f"standin-{provider}-secret"


@dataclass(frozen=True, slots=True)
class Grant:
    """What an authorization code stands for until it is traded."""

    provider: str
    client_id: str
    redirect_uri: str
    user: str
    challenge: str
    expires_at: float


@dataclass
class Storage:
    """Codes and access tokens, in memory: the stand-in forgets on restart."""

    codes: dict[str, Grant] = field(default_factory=dict)
    tokens: dict[str, tuple[str, str, float]] = field(default_factory=dict)

    def sweep(self) -> None:
        """Forget expired codes and tokens, so an idle stand-in stays small."""
        now = time.monotonic()
        self.codes = {k: g for k, g in self.codes.items() if g.expires_at > now}
        self.tokens = {k: t for k, t in self.tokens.items() if t[2] > now}


STORAGE = web.AppKey("standin_storage", Storage)


class OAuthError(Exception):
    """An RFC 6749 error reply: {"error": ..., "error_description": ...}."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status, self.error, self.description = status, error, description

    def response(self) -> web.Response:
        """The JSON reply the token or userinfo caller sees."""
        body = {"error": self.error, "error_description": self.description}
        headers = {"Cache-Control": "no-store"}
        if self.status == 401:
            headers["WWW-Authenticate"] = f'Bearer error="{self.error}"'
        return web.json_response(body, status=self.status, headers=headers)


def _page(title: str, body: str, *, status: int = 200) -> web.Response:
    """A whole HTML page around body."""
    text = (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>"
        "body{font:16px system-ui,sans-serif;max-width:420px;margin:40px auto;"
        "padding:0 16px}label{display:block;margin:8px 0}button{font-size:16px;"
        "padding:8px 24px;margin-right:12px}.note{color:#666;font-size:13px}"
        f"</style></head><body>{body}</body></html>"
    )
    return web.Response(text=text, status=status, content_type="text/html")


def _provider(request: web.Request) -> str:
    """The provider in the URL, or a 404 page."""
    provider = request.match_info["provider"]
    if provider not in USERS:
        raise web.HTTPNotFound(text="unknown provider")
    return provider


def _check_request(provider: str, params: dict[str, str]) -> str | None:
    """Why an authorize request is refused before asking the user, or None.

    These failures are shown, not redirected: the redirect URI is not trusted yet.
    """
    if params.get("client_id") != client_id(provider):
        return "未知的应用（client_id）。"
    if params.get("response_type") != "code":
        return "只支持 response_type=code。"
    target = urlsplit(params.get("redirect_uri", ""))
    if not target.scheme or not (target.netloc or target.path):
        return "缺少有效的回调地址（redirect_uri）。"
    if params.get("code_challenge") and params.get("code_challenge_method") != "S256":
        return "PKCE 只支持 S256。"
    return None


FIELDS = (
    "client_id",
    "response_type",
    "redirect_uri",
    "state",
    "scope",
    "code_challenge",
    "code_challenge_method",
)


async def authorize_page(request: web.Request) -> web.Response:
    """GET /{provider}/authorize: pick a stand-in user, then 同意 or 拒绝."""
    provider = _provider(request)
    params = {k: request.query.get(k, "")[:512] for k in FIELDS}
    problem = _check_request(provider, params)
    label = LABELS[provider]
    if problem:
        return _page("授权失败", f"<h1>授权失败</h1><p>{problem}</p>", status=400)

    hidden = "".join(
        f'<input type="hidden" name="{k}" value="{html.escape(v)}">'
        for k, v in params.items()
    )
    users = "".join(
        f'<label><input type="radio" name="user" value="{user}"{" checked" * (i == 0)}>'
        f" {html.escape(name)}（{user}）</label>"
        for i, (user, name) in enumerate(USERS[provider].items())
    )
    body = (
        f"<h1>{label}登录（替身）</h1>"
        f"<p>应用 <code>{html.escape(params['client_id'])}</code> 请求获取你的{label}"
        "昵称与用户标识。请选择以哪个替身用户登录：</p>"
        f'<form method="post" action="/{provider}/authorize">{hidden}{users}'
        '<p><button type="submit" name="decision" value="allow">同意</button>'
        '<button type="submit" name="decision" value="deny">拒绝</button></p></form>'
        '<p class="note">这是开发与测试用的替身服务，不是真实的第三方平台。</p>'
    )
    return _page(f"{label}授权", body)


async def authorize(request: web.Request) -> web.Response:
    """POST /{provider}/authorize: the user's answer; back to the client either way."""
    provider = _provider(request)
    form = await request.post()
    params = {k: str(form.get(k, ""))[:512] for k in FIELDS}
    problem = _check_request(provider, params)
    if problem:
        return _page("授权失败", f"<h1>授权失败</h1><p>{problem}</p>", status=400)

    reply = {"state": params["state"]} if params["state"] else {}
    user = str(form.get("user", ""))
    if form.get("decision") != "allow":
        reply = {"error": "access_denied", "error_description": "user denied", **reply}
        log.info("%s: the user declined", provider)
    elif user not in USERS[provider]:
        return _page("授权失败", "<h1>授权失败</h1><p>请选择一个用户。</p>", status=400)
    else:
        code = secrets.token_urlsafe(24)
        request.app[STORAGE].sweep()
        request.app[STORAGE].codes[code] = Grant(
            provider=provider,
            client_id=params["client_id"],
            redirect_uri=params["redirect_uri"],
            user=user,
            challenge=params["code_challenge"],
            expires_at=time.monotonic() + CODE_TTL,
        )
        reply = {"code": code, **reply}
        log.info("%s: %s agreed", provider, user)
    joiner = "&" if "?" in params["redirect_uri"] else "?"
    raise web.HTTPFound(f"{params['redirect_uri']}{joiner}{urlencode(reply)}")


def _client_credentials(request: web.Request, form: dict[str, str]) -> tuple[str, str]:
    """client_id and secret from HTTP Basic, or else from the form."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            name, _, secret = base64.b64decode(value).decode().partition(":")
        except ValueError:
            return "", ""
        return name, secret
    return form.get("client_id", ""), form.get("client_secret", "")


async def token(request: web.Request) -> web.Response:
    """POST /{provider}/token: trade a code, once, for an access token."""
    provider = _provider(request)
    form = {k: str(v)[:512] for k, v in (await request.post()).items()}
    try:
        grant = _redeem(request, provider, form)
    except OAuthError as err:
        log.warning("%s token refused: %s", provider, err.error)
        return err.response()

    access_token = secrets.token_urlsafe(32)
    request.app[STORAGE].tokens[access_token] = (
        provider,
        grant.user,
        time.monotonic() + TOKEN_TTL,
    )
    body = {
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": int(TOKEN_TTL),
    }
    return web.json_response(body, headers={"Cache-Control": "no-store"})


def _redeem(request: web.Request, provider: str, form: dict[str, str]) -> Grant:
    """Check a token request and spend its code; OAuthError says what is wrong.

    The code is spent before the checks, so a wrong verifier burns it as well.
    """
    name, secret = _client_credentials(request, form)
    if name != client_id(provider) or not hmac.compare_digest(
        secret.encode(), client_secret(provider).encode()
    ):
        raise OAuthError(401, "invalid_client", "unknown client or wrong secret")
    if form.get("grant_type") != "authorization_code":
        raise OAuthError(400, "unsupported_grant_type", "authorization_code only")
    grant = request.app[STORAGE].codes.pop(form.get("code", ""), None)
    if grant is None or grant.provider != provider or grant.client_id != name:
        raise OAuthError(400, "invalid_grant", "unknown or used code")
    if grant.expires_at < time.monotonic():
        raise OAuthError(400, "invalid_grant", "expired code")
    if form.get("redirect_uri") != grant.redirect_uri:
        raise OAuthError(400, "invalid_grant", "redirect_uri differs from authorize")
    if grant.challenge:
        verifier = form.get("code_verifier", "")
        if not verifier or not hmac.compare_digest(
            create_s256_code_challenge(verifier).encode(), grant.challenge.encode()
        ):
            raise OAuthError(400, "invalid_grant", "PKCE verifier does not match")
    return grant


async def userinfo(request: web.Request) -> web.Response:
    """GET /{provider}/userinfo: {id, nickname} of the access token's user."""
    provider = _provider(request)
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    found = None
    if scheme.lower() == "bearer":
        found = request.app[STORAGE].tokens.get(value.strip())
    if found is None or found[0] != provider or found[2] < time.monotonic():
        return OAuthError(401, "invalid_token", "unknown or expired token").response()
    user = found[1]
    return web.json_response({"id": user, "nickname": USERS[provider][user]})


async def index(request: web.Request) -> web.Response:
    """GET /: what this is and how to point the server at it."""
    rows = "".join(
        f"<li>{LABELS[p]} <code>/{p}/…</code>: client_id <code>{client_id(p)}</code>, "
        f"secret <code>{client_secret(p)}</code>, users {', '.join(USERS[p])}</li>"
        for p in USERS
    )
    return _page(
        "OAuth 替身", f"<h1>OAuth 替身服务</h1><ul>{rows}</ul><p>See docs/oauth.md.</p>"
    )


async def healthz(request: web.Request) -> web.Response:
    """GET /healthz: up."""
    return web.json_response({"ok": True})


def create_standin() -> web.Application:
    """The stand-in application, with empty storage."""
    app = web.Application(client_max_size=16 * 1024)
    app[STORAGE] = Storage()
    app.router.add_get("/", index)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/{provider}/authorize", authorize_page)
    app.router.add_post("/{provider}/authorize", authorize)
    app.router.add_post("/{provider}/token", token)
    app.router.add_get("/{provider}/userinfo", userinfo)
    return app


def serve_standin(settings: Settings, *, host: str, port: int) -> int:
    """qrlogin standin-oauth: run the stand-in until stopped; never in production."""
    if not settings.is_development:
        raise ConfigError("the OAuth stand-in never runs in production mode")
    log.info("OAuth stand-in listening on %s:%d", host, port)
    web.run_app(
        create_standin(),
        host=host,
        port=port,
        print=None,
        access_log=None,
        shutdown_timeout=2,
    )
    return 0
