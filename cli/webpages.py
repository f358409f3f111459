"""The web UI's pages (``skyctl ui``), rendered on the server from what ``get`` shows.

Pure: registry data in, HTML out. The services table is ``get svc -A -o wide``'s own
(``cli/views.py``'s ``ServiceListing``: the same header and cells, ENDPOINTS ready/total
included), so the UI and the CLI cannot disagree on a column. Every value that came from
the log (names, labels, selectors, actors) and every value a visitor typed passes through
``html.escape`` here, and nowhere else builds HTML.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING

from cli.options import Format, Output
from cli.parse import parse_name
from cli.views import ServiceListing
from registry.errors import InvalidInput

if TYPE_CHECKING:
    from cli.selector import Selector
    from registry.discovery.follower import ServiceEndpoints
    from registry.services.when import When

__all__ = [
    "LIVE_JS",
    "STYLE",
    "Filters",
    "error_page",
    "login_page",
    "parse_filters",
    "services_page",
    "services_table",
]

# The page's only script, served as /live.js (the Content-Security-Policy allows no
# inline script): on each server-sent event it re-fetches the table and swaps it in, one
# fetch at a time however fast events come. The HTML it swaps in was escaped on the
# server; the event's data is never put in the page.
LIVE_JS = """\
const table = document.getElementById("services");
const source = new EventSource("/events");
let busy = false, again = false;
async function refresh() {
  if (busy) { again = true; return; }
  busy = true;
  try {
    do {
      again = false;
      const response = await fetch("/services/table" + location.search);
      if (response.ok) table.innerHTML = await response.text();
    } while (again);
  } finally {
    busy = false;
  }
}
source.onopen = refresh;
source.onmessage = refresh;
source.addEventListener("endpoints", refresh);
"""

STYLE = (
    "body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}"
    "th,td{text-align:left;padding:.2em .8em;border-bottom:1px solid #ddd;font-size:90%}"
    "th{background:#f4f4f4}.error{color:#a00}form.filters input{margin-right:.5em}"
)


@dataclass(frozen=True)
class Filters:
    """What the services page was asked to show: ``?namespace=``, ``?selector=`` (``-l``
    syntax, parsed by the CLI's own parser), ``?type=``, ``?unready=1`` (only services
    without a ready endpoint), ``?changed=`` (only services changed since: ``30m`` ago,
    a time, or a sequence, as ``--at`` reads them)."""

    namespace: str | None = None
    selector: str | None = None
    type: str | None = None
    unready: bool = False
    changed: str | None = None
    parsed_selector: Selector | None = None
    since: When | None = None

    def matches(self, found: ServiceEndpoints) -> bool:
        service = found.record.service
        if self.parsed_selector is not None and not self.parsed_selector.matches(service.labels):
            return False
        if self.type is not None and service.type.value != self.type:
            return False
        if self.unready and found.endpoints.ready > 0:
            return False
        return self.since is None or _changed_since(found, self.since)


def _changed_since(found: ServiceEndpoints, since: When) -> bool:
    """Whether the service's last event is at or after ``since`` (a sequence, or a time:
    when the server stored it, else the event's own time)."""
    from registry.services.when import AtSequence

    record = found.record
    if isinstance(since, AtSequence):
        return record.seq >= since.seq
    if record.time_ns:
        return record.time_ns >= since.time.timestamp() * 1e9
    return record.event.time >= since.time


def parse_filters(query: Mapping[str, str]) -> Filters:
    """The filters of a query string; ``InvalidInput`` naming the first bad value."""
    from events import ServiceType

    namespace = query.get("namespace") or None
    if namespace is not None:
        namespace = parse_name(namespace, "namespace")
    selector = query.get("selector") or None
    parsed = None
    if selector is not None:
        from cli.selector import parse_label_selector

        parsed = parse_label_selector(selector)
    kind = query.get("type") or None
    types = [t.value for t in ServiceType]
    if kind is not None and kind not in types:
        raise InvalidInput("type", kind, f"must be one of {', '.join(types)}")
    unready = query.get("unready", "")
    if unready not in ("", "0", "1", "on", "true"):
        raise InvalidInput("unready", unready, "must be 1 or 0")
    changed = query.get("changed") or None
    since = None
    if changed is not None:
        from registry.services.when import parse_when

        since = parse_when(changed)
    only_unready = unready in ("1", "on", "true")
    return Filters(namespace, selector, kind, only_unready, changed, parsed, since)


def _page(title: str, body: str, *, user: str | None = None) -> str:
    who = (
        f'<form method="post" action="/logout">signed in as {escape(user)} '
        '<button type="submit">Sign out</button></form>'
        if user
        else ""
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<title>{escape(title)} - SkyFlow</title><link rel="stylesheet" href="/ui.css"></head>'
        f"<body><header>{who}</header><h1>{escape(title)}</h1>{body}</body></html>"
    )


def services_table(found: Sequence[ServiceEndpoints], filters: Filters) -> str:
    """The table of ``get svc -A -o wide`` (ENDPOINTS included) over the services the
    filters pick, as an HTML fragment (what the live page swaps in)."""
    view = ServiceListing(Format(Output.wide.value), all_namespaces=True)
    chosen = [each for each in found if filters.matches(each)]
    view.endpoints = {each.key: each.endpoints for each in chosen}
    records = [each.record for each in chosen]
    view.seen(records)
    if not records:
        return '<p class="empty">No services found.</p>'
    head = "".join(f"<th>{escape(cell)}</th>" for cell in view.header())
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>"
        for record in records
        for row in view.rows(record)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _filters_form(filters: Filters) -> str:
    def field(name: str, value: str | None, hint: str) -> str:
        return (
            f'<label>{escape(name)} <input name="{escape(name)}" '
            f'value="{escape(value or "")}" placeholder="{escape(hint)}"></label>'
        )

    checked = " checked" if filters.unready else ""
    return (
        '<form class="filters" method="get" action="/">'
        + field("namespace", filters.namespace, "all")
        + field("selector", filters.selector, "app=web,tier!=db")
        + field("type", filters.type, "ClusterIP")
        + field("changed", filters.changed, "since: 30m")
        + f'<label><input type="checkbox" name="unready" value="1"{checked}> '
        'no ready endpoint</label> <button type="submit">Filter</button></form>'
    )


def services_page(found: Sequence[ServiceEndpoints], filters: Filters, *, user: str | None) -> str:
    """Page (a): every service the filters pick, live."""
    body = (
        _filters_form(filters)
        + f'<div id="services">{services_table(found, filters)}</div>'
        + '<script src="/live.js" defer></script>'
    )
    return _page("Services", body, user=user)


def login_page(message: str | None = None) -> str:
    """The sign-in form: the credentials skyctl takes (a user and password, or a token)."""
    line = f'<p class="error">{escape(message)}</p>' if message else ""
    body = (
        line + '<form method="post" action="/login">'
        '<p><label>User <input name="user" autocomplete="username"></label></p>'
        '<p><label>Password <input name="password" type="password" '
        'autocomplete="current-password"></label></p>'
        '<p><label>or token <input name="token" type="password"></label></p>'
        '<p><button type="submit">Sign in</button></p></form>'
    )
    return _page("Sign in", body)


def error_page(message: str, *, user: str | None = None) -> str:
    """A refusal, as the CLI words it (one line)."""
    return _page("Error", f'<p class="error">error: {escape(message)}</p>', user=user)
