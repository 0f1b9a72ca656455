"""URL map of the portal home, the declaration zone, short links and staff pages."""

from __future__ import annotations

from aiohttp import web

from server.zone import staff, views


def setup(app: web.Application) -> None:
    """Register the routes, each under a name."""
    add = app.router.add_route
    add("GET", "/portal/", views.portal_home, name="portal_home")
    add("GET", "/zone/", views.zone_page, name="zone")
    add("GET", "/zone/programs/{program_id}", views.program_page, name="program")
    add("GET", "/zone/programs/{program_id}/notice", views.notice_page, name="notice")
    add("GET", "/zone/guides/{slug}", views.guide_page, name="guide")
    add("GET", "/short/{code}", views.follow_short_link, name="short_link")
    add("GET", "/api/app/home", views.app_home, name="app_home")
    add("GET", "/api/programs", views.programs_api, name="programs_api")
    add("GET", "/api/programs/{program_id}", views.program_api, name="program_api")

    add("GET", "/staff/zone", staff.zone_staff_page, name="staff_zone")
    add(
        "GET",
        "/staff/programs/{program_id}",
        staff.program_edit_page,
        name="staff_program_edit",
    )
    add("GET", "/api/staff/programs", staff.staff_programs, name="staff_programs")
    add(
        "POST", "/api/staff/programs", staff.create_program, name="staff_program_create"
    )
    add(
        "PUT",
        "/api/staff/programs/{program_id}",
        staff.update_program,
        name="staff_program_update",
    )
    add(
        "POST",
        "/api/staff/programs/{program_id}/status",
        staff.program_status,
        name="staff_program_status",
    )
    add("PUT", "/api/staff/guides/{slug}", staff.save_guide, name="staff_guide_save")
    add("GET", "/api/staff/short-links", staff.short_links, name="staff_short_links")
    add(
        "POST",
        "/api/staff/short-links",
        staff.save_short_link,
        name="staff_short_link_save",
    )
