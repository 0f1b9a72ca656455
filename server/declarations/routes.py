"""URL map of declarations: the enterprise's calls and pages, and staff review."""

from __future__ import annotations

from aiohttp import web

from server.declarations import staff, views

ONE = "/api/declarations/{declaration_id}"


def setup(app: web.Application) -> None:
    """Register the routes, each under a name."""
    add = app.router.add_route
    add("GET", "/api/declarations", views.list_mine, name="declarations_api")
    add("POST", "/api/declarations", views.create, name="declaration_create")
    add("GET", ONE, views.read, name="declaration_api")
    add("PATCH", ONE, views.save, name="declaration_save")
    add("POST", ONE + "/submit", views.submit, name="declaration_submit")
    add("POST", ONE + "/withdraw", views.withdraw, name="declaration_withdraw")
    add("POST", ONE + "/attachments", views.upload, name="attachment_upload")
    add(
        "GET",
        ONE + "/attachments/{attachment_id}",
        views.download,
        name="attachment_download",
    )
    add(
        "DELETE",
        ONE + "/attachments/{attachment_id}",
        views.remove,
        name="attachment_delete",
    )
    add(
        "GET",
        "/declare/declarations/{declaration_id}",
        views.declaration_page,
        name="declaration_page",
    )

    add("GET", "/api/staff/declarations", staff.queue, name="staff_declarations")
    add(
        "POST",
        "/api/staff/declarations/{declaration_id}/{action:accept|return|approve|reject}",
        staff.decide,
        name="staff_declaration_decide",
    )
    add("GET", "/staff/declarations", staff.review_page, name="staff_declarations_page")
