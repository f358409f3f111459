"""A hub's sites as ``skyctl get sites`` shows them: its columns and rows, which the web
UI's sites page reuses (one rendering, so the page and the CLI cannot disagree)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from registry.sites.links import SiteReport

__all__ = ["SITE_COLUMNS", "ago", "site_row"]

SITE_COLUMNS = ("NAME", "DOMAIN", "LINK", "LAST-HEARD", "LAG", "NEWEST", "STATE", "POLICY")


def ago(seconds: float | None) -> str:
    """``4.2s``, ``3m``, or ``never``: how long ago a site was last heard."""
    if seconds is None:
        return "never"
    return f"{seconds:.1f}s" if seconds < 60 else f"{seconds / 60:.0f}m"


def site_row(report: SiteReport) -> list[str]:
    """One site's row: its link (up while the hub calls it live), when the hub last heard
    from it, the lag last reported, the age of the newest message the hub holds from it,
    its lease state and policy."""
    state = report.state
    newest = (report.at - report.newest).total_seconds() if report.newest else None
    return [
        report.site.name,
        report.site.domain,
        "up" if state == "live" else "down",
        ago(report.silent_s),
        str(report.lag),
        "<none>" if newest is None else ago(max(0.0, newest)),
        state,
        str(report.site.policy),
    ]
