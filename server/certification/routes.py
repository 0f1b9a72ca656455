"""URL map of certification, unbind requests and the staff queue."""

from __future__ import annotations

from aiohttp import web

from server.certification import flow, views


def setup(app: web.Application) -> None:
    """Register the routes, each under a name."""
    add = app.router.add_route
    add(
        "GET",
        "/api/certification",
        views.certification_status,
        name="certification_api",
    )
    add("POST", "/api/unbind-requests", views.file_unbind_request, name="unbind_file")
    add("GET", "/api/unbind-requests", views.my_unbind_requests, name="unbind_mine")
    add("GET", "/api/staff/unbind-requests", views.staff_queue, name="staff_queue")
    add(
        "POST",
        "/api/staff/unbind-requests/{request_id}/approve",
        views.staff_approve,
        name="staff_approve",
    )
    add(
        "POST",
        "/api/staff/unbind-requests/{request_id}/reject",
        views.staff_reject,
        name="staff_reject",
    )
    add("GET", "/feedback", views.feedback_page, name="feedback")
    add("GET", "/m/feedback", views.feedback_page, name="mobile_feedback")
    add("GET", "/staff/", views.staff_page, name="staff")
    add("GET", "/certification/start", flow.start, name="certification_start")
    add("GET", "/certification/callback", flow.callback, name="certification_callback")
    add(
        "POST",
        "/api/app/certification/start",
        flow.app_start,
        name="app_certification_start",
    )
