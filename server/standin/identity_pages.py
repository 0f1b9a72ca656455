"""The HTML pages of the 一证通 stand-in: login, registration, password reset.

They look like a plain government login portal so that a developer clicking
through enterprise certification sees the shape of the real thing, and every
page says plainly that it is a stand-in. Values are escaped here, at the only
place HTML is written.
"""

from __future__ import annotations

from html import escape
from urllib.parse import urlencode

from aiohttp import web

SUPPORT_PHONE = "010-58511090"
TITLE = "北京市统一身份认证平台"

STYLE = """
*{box-sizing:border-box}
body{margin:0;font:15px/1.6 "PingFang SC","Microsoft YaHei",system-ui,sans-serif;
color:#222;background:#f2f4f7}
header{background:#0b4ea2;color:#fff;padding:14px 0;border-bottom:4px solid #c8161d}
header div,main,footer{max-width:960px;margin:0 auto;padding:0 20px}
header b{font-size:22px;letter-spacing:2px}
header span{margin-left:12px;font-size:14px;opacity:.85}
main{padding-top:32px;padding-bottom:32px}
.card{background:#fff;max-width:440px;margin:0 auto;padding:28px 32px;
border:1px solid #dde3ea;border-radius:4px}
h1{font-size:20px;margin:0 0 18px;color:#0b4ea2;text-align:center}
label{display:block;margin:12px 0 4px;font-weight:600}
input{width:100%;padding:9px 10px;font-size:15px;border:1px solid #b8c2cc;
border-radius:3px}
input:focus{outline:2px solid #0b4ea2;border-color:#0b4ea2}
.hint{font-size:13px;color:#667}
.bad{color:#c8161d;font-size:13px;margin-top:4px}
.errors{background:#fdecea;border:1px solid #f5c2c0;color:#a11;padding:10px 14px;
margin-bottom:14px;border-radius:3px}
.notice{background:#eef4fc;border:1px solid #c9dbf3;padding:10px 14px;
margin-bottom:14px;border-radius:3px;font-size:14px}
button{width:100%;margin-top:20px;padding:10px;font-size:16px;color:#fff;
background:#0b4ea2;border:0;border-radius:3px;cursor:pointer}
button.plain{background:#fff;color:#0b4ea2;border:1px solid #0b4ea2}
.links{display:flex;justify-content:space-between;margin-top:14px;font-size:14px}
a{color:#0b4ea2}
dl{display:grid;grid-template-columns:8em 1fr;gap:6px 12px;margin:0}
dt{color:#667}dd{margin:0;word-break:break-all}
footer{text-align:center;color:#667;font-size:13px;padding-bottom:32px}
"""


def page(title: str, body: str, *, status: int = 200) -> web.Response:
    """A whole page: the portal's header, body in a card, the support footer."""
    text = (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} - {TITLE}（替身）</title><style>{STYLE}</style>"
        f"</head><body><header><div><b>{TITLE}</b><span>一证通 · 开发替身</span>"
        f'</div></header><main><div class="card">{body}</div></main><footer>'
        f"<p>技术咨询电话：{SUPPORT_PHONE}</p>"
        "<p>本站是开发与测试用的替身服务，不是北京市统一身份认证平台；"
        "请勿填写真实的账号和密码。</p></footer></body></html>"
    )
    response = web.Response(text=text, status=status, content_type="text/html")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    return response


def field(
    name: str,
    label: str,
    *,
    value: str = "",
    kind: str = "text",
    error: str | None = None,
    hint: str = "",
    autocomplete: str = "off",
) -> str:
    """One labelled input with its hint and its error, if any."""
    shown = "" if kind == "password" else escape(value)
    extra = f'<div class="hint">{escape(hint)}</div>' if hint else ""
    bad = f'<div class="bad" id="{name}-error">{escape(error)}</div>' if error else ""
    invalid = f' aria-invalid="true" aria-describedby="{name}-error"' if error else ""
    return (
        f'<label for="{name}">{escape(label)}</label>'
        f'<input id="{name}" name="{name}" type="{kind}" value="{shown}" '
        f'autocomplete="{autocomplete}"{invalid}>{extra}{bad}'
    )


def hidden(**values: str) -> str:
    """Hidden inputs carrying values through a form."""
    return "".join(
        f'<input type="hidden" name="{name}" value="{escape(value)}">'
        for name, value in values.items()
    )


def errors_box(errors: dict[str, str]) -> str:
    """The summary of a form's errors above it."""
    if not errors:
        return ""
    items = "".join(f"<li>{escape(message)}</li>" for message in errors.values())
    return f'<div class="errors" role="alert"><ul>{items}</ul></div>'


def with_next(path: str, next_url: str) -> str:
    """A link to path that carries where to go afterwards."""
    return f"{path}?{urlencode({'next': next_url})}" if next_url else path


def login_page(
    *,
    next_url: str = "",
    login_name: str = "",
    error: str = "",
    client_name: str = "",
    status: int = 200,
) -> web.Response:
    """法人登录: login name and password."""
    notice = ""
    if client_name:
        notice = (
            f'<div class="notice">“{escape(client_name)}”请求通过一证通确认您的企业'
            "身份。登录后，将向其提供企业名称和统一社会信用代码。</div>"
        )
    body = (
        f"<h1>法人用户登录</h1>{notice}{errors_box({'form': error} if error else {})}"
        '<form method="post" action="/login">'
        + hidden(next=next_url)
        + field("login_name", "登录名", value=login_name, autocomplete="username")
        + field("password", "密码", kind="password", autocomplete="current-password")
        + '<button type="submit">登录</button></form>'
        f'<div class="links"><a href="{escape(with_next("/register", next_url))}">'
        f'注册一证通账号</a><a href="{escape(with_next("/forgot", next_url))}">'
        "忘记密码？</a></div>"
    )
    return page("法人用户登录", body, status=status)


def register_page(
    *,
    values: dict[str, str],
    errors: dict[str, str],
    next_url: str = "",
    status: int = 200,
) -> web.Response:
    """一证通注册: the enterprise, its code, a login and a contact phone."""
    body = (
        f"<h1>法人用户注册</h1>{errors_box(errors)}"
        '<form method="post" action="/register" novalidate>'
        + hidden(next=next_url)
        + field(
            "enterprise_name",
            "企业名称",
            value=values.get("enterprise_name", ""),
            error=errors.get("enterprise_name"),
            hint="与营业执照上的名称一致",
            autocomplete="organization",
        )
        + field(
            "uscc",
            "统一社会信用代码",
            value=values.get("uscc", ""),
            error=errors.get("uscc"),
            hint="18位，见营业执照，如 91110000802100433B",
        )
        + field(
            "login_name",
            "登录名",
            value=values.get("login_name", ""),
            error=errors.get("login_name"),
            hint="4至32位，字母开头，可含字母、数字、下划线",
            autocomplete="username",
        )
        + field(
            "password",
            "密码",
            kind="password",
            error=errors.get("password"),
            hint="8至64位，须同时包含字母和数字",
            autocomplete="new-password",
        )
        + field(
            "password2",
            "确认密码",
            kind="password",
            error=errors.get("password2"),
            autocomplete="new-password",
        )
        + field(
            "contact_phone",
            "联系电话",
            value=values.get("contact_phone", ""),
            error=errors.get("contact_phone"),
            hint="手机号或带区号的固定电话",
            autocomplete="tel",
        )
        + '<button type="submit">注册</button></form>'
        f'<div class="links"><a href="{escape(with_next("/login", next_url))}">'
        "已有账号，去登录</a></div>"
    )
    return page("法人用户注册", body, status=status)


def forgot_page(
    *, values: dict[str, str], error: str = "", next_url: str = "", status: int = 200
) -> web.Response:
    """忘记密码, step 1: prove the account by its login name, code and phone."""
    body = (
        "<h1>忘记密码</h1>"
        '<div class="notice">替身服务说明：真实的一证通会通过短信验证码或线下核验'
        "确认身份；这里只核对登录名、统一社会信用代码和注册时填写的联系电话。</div>"
        f"{errors_box({'form': error} if error else {})}"
        '<form method="post" action="/forgot" novalidate>'
        + hidden(next=next_url)
        + field(
            "login_name",
            "登录名",
            value=values.get("login_name", ""),
            autocomplete="username",
        )
        + field("uscc", "统一社会信用代码", value=values.get("uscc", ""))
        + field(
            "contact_phone",
            "联系电话",
            value=values.get("contact_phone", ""),
            autocomplete="tel",
        )
        + '<button type="submit">下一步</button></form>'
        f'<div class="links"><a href="{escape(with_next("/login", next_url))}">'
        "返回登录</a></div>"
    )
    return page("忘记密码", body, status=status)


def reset_page(
    *, token: str, error: str = "", next_url: str = "", status: int = 200
) -> web.Response:
    """忘记密码, step 2: the new password."""
    body = (
        f"<h1>设置新密码</h1>{errors_box({'form': error} if error else {})}"
        '<form method="post" action="/forgot/reset">'
        + hidden(token=token, next=next_url)
        + field(
            "password",
            "新密码",
            kind="password",
            hint="8至64位，须同时包含字母和数字",
            autocomplete="new-password",
        )
        + field("password2", "确认新密码", kind="password", autocomplete="new-password")
        + '<button type="submit">确认修改</button></form>'
    )
    return page("设置新密码", body, status=status)


def message_page(
    title: str, text: str, *, link: str = "", link_text: str = "", status: int = 200
) -> web.Response:
    """A short message with one way onwards."""
    onwards = f'<p><a href="{escape(link)}">{escape(link_text)}</a></p>' if link else ""
    body = f"<h1>{escape(title)}</h1><p>{escape(text)}</p>{onwards}"
    return page(title, body, status=status)


def account_page(
    *, enterprise_name: str, uscc: str, login_name: str, contact_phone: str
) -> web.Response:
    """The logged-in enterprise, and a way to log out."""
    rows = "".join(
        f"<dt>{label}</dt><dd>{escape(value)}</dd>"
        for label, value in (
            ("企业名称", enterprise_name),
            ("统一社会信用代码", uscc),
            ("登录名", login_name),
            ("联系电话", contact_phone),
        )
    )
    body = (
        f"<h1>法人用户中心</h1><dl>{rows}</dl>"
        '<form method="post" action="/logout">'
        '<button class="plain" type="submit">退出登录</button></form>'
    )
    return page("法人用户中心", body)


def home_page(*, issuer: str, clients: list[tuple[str, str]]) -> web.Response:
    """What this is, where its endpoints are and which clients it knows."""
    known = "".join(
        f"<li><code>{escape(client_id)}</code>：{escape(prefixes)}</li>"
        for client_id, prefixes in clients
    )
    body = (
        "<h1>一证通（替身）</h1>"
        '<p><a href="/login">法人用户登录</a> · <a href="/register">注册</a> · '
        '<a href="/forgot">忘记密码</a></p>'
        f'<p class="hint">OpenID Connect issuer <code>{escape(issuer)}</code>，'
        'discovery at <a href="/.well-known/openid-configuration">'
        "/.well-known/openid-configuration</a>. Clients and their redirect URI "
        f'prefixes:</p><ul class="hint">{known}</ul>'
        '<p class="hint">See docs/identity.md.</p>'
    )
    return page("一证通（替身）", body)
