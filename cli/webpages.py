"""The web UI's pages (``skyctl ui``), rendered on the server from what ``get`` shows.

Pure: registry data in, HTML out. The services table is ``get svc -A -o wide``'s own
(``cli/views.py``'s ``ServiceListing``: the same header and cells, ENDPOINTS ready/total
included), so the UI and the CLI cannot disagree on a column. Every value that came from
the log (names, labels, selectors, actors) and every value a visitor typed passes through
``html.escape`` here, and nowhere else builds HTML.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING
from urllib.parse import quote

from cli.options import Format, Output
from cli.parse import parse_name
from cli.views import ServiceListing
from registry.errors import InvalidInput

if TYPE_CHECKING:
    from cli.selector import Selector
    from registry.discovery.endpoints import Endpoints
    from registry.discovery.follower import ServiceEndpoints
    from registry.services.diff import FieldChange
    from registry.services.when import When

__all__ = [
    "LIVE_JS",
    "STYLE",
    "Filters",
    "error_page",
    "history_page",
    "login_page",
    "parse_filters",
    "service_page",
    "service_path",
    "services_page",
    "services_page_parts",
    "services_table",
]

# The page's only script, served as /live.js (the Content-Security-Policy allows no
# inline script). The page was rendered at a mark (``data-since``, ``data-moves``: where
# the UI's reader of the log and of endpoints stood), and its stream opens from there, so
# it sees every change after the table it holds. On each change of a service it fetches
# that service's rows alone (``?service=NAMESPACE/NAME``, the page's filters kept) and
# swaps them in, in the table's order; many at once, a stream that says ``resync``, a
# reconnect, or a page without a mark: the whole table. One fetch at a time, the changes
# that come meanwhile gathered into the next. The HTML it swaps in was escaped on the
# server; the event's data only names what to fetch and is never put in the page.
LIVE_JS = """\
const holder = document.getElementById("services");
const mark = new URLSearchParams();
if (holder.dataset.since) mark.set("since", holder.dataset.since);
if (holder.dataset.moves) mark.set("moves", holder.dataset.moves);
const source = new EventSource("/events?" + mark);
const pending = new Set();
const MOST = 50;
let whole = !holder.dataset.since, busy = false, opened = false;
function before(a, b) {
  return a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);
}
function place(row) {
  const rows = holder.querySelectorAll("tbody tr");
  if (!rows.length) { whole = true; return; }
  const key = row.dataset.key.split("/");
  let low = 0, high = rows.length;
  while (low < high) {
    const middle = (low + high) >> 1;
    if (before(rows[middle].dataset.key.split("/"), key)) low = middle + 1;
    else high = middle;
  }
  if (low < rows.length) rows[low].before(row);
  else rows[rows.length - 1].after(row);
}
function swap(keys, html) {
  const fresh = document.createElement("template");
  fresh.innerHTML = html;
  for (const key of keys) {
    const named = `tbody tr[data-key="${CSS.escape(key)}"]`;
    for (const old of holder.querySelectorAll(named)) old.remove();
  }
  for (const row of fresh.content.querySelectorAll("tbody tr")) place(row);
}
async function refresh() {
  if (busy) return;
  busy = true;
  try {
    while (whole || pending.size) {
      if (whole || pending.size > MOST) {
        whole = false;
        pending.clear();
        const response = await fetch("/services/table" + location.search);
        if (response.ok) holder.innerHTML = await response.text();
        continue;
      }
      const keys = [...pending];
      pending.clear();
      const query = new URLSearchParams(location.search);
      for (const key of keys) query.append("service", key);
      if (holder.querySelector("table.head[data-signing]")) query.set("signing", "1");
      const response = await fetch("/services/table?" + query);
      if (response.ok) swap(keys, await response.text());
    }
  } finally {
    busy = false;
  }
}
function changed(event) {
  const data = JSON.parse(event.data);
  if (data.namespace && data.name) pending.add(data.namespace + "/" + data.name);
  else whole = true;
  refresh();
}
source.onopen = () => {
  if (opened) whole = true;
  opened = true;
  refresh();
};
source.onmessage = changed;
source.addEventListener("endpoints", changed);
source.addEventListener("resync", () => { whole = true; refresh(); });
"""

# The services table's columns (get svc -A -o wide, ENDPOINTS before AGE), in % of the
# width: fixed, so its blocks of rows line up with its header without measuring them.
_SERVICE_COLUMNS = (9, 12, 7, 8, 7, 7, 5, 4, 6, 11, 6, 5, 8, 5)
STYLE = (
    "body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}"
    "th,td{text-align:left;padding:.2em .8em;border-bottom:1px solid #ddd;font-size:90%}"
    "th{background:#f4f4f4}.error{color:#a00}form.filters input{margin-right:.5em}"
    "#services table{table-layout:fixed;width:100%}#services td,#services th"
    "{overflow-wrap:anywhere}#services .rows{content-visibility:auto;"
    "contain-intrinsic-size:auto 5000px}"
    + "".join(
        f"#services td:nth-child({i}),#services th:nth-child({i}){{width:{w}%}}"
        for i, w in enumerate(_SERVICE_COLUMNS, 1)
    )
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
    return _page_head(title, user=user) + body + _PAGE_END


_PAGE_END = "</body></html>"


def _page_head(title: str, *, user: str | None = None) -> str:
    """A page up to its heading: what its body follows."""
    who = (
        f'<form method="post" action="/logout">signed in as {escape(user)} '
        '<button type="submit">Sign out</button></form>'
        if user
        else ""
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<title>{escape(title)} - SkyFlow</title><link rel="stylesheet" href="/ui.css"></head>'
        f"<body><header>{who}</header><h1>{escape(title)}</h1>"
    )


CHUNK_ROWS = 250  # rows of the services table rendered (and sent) at a time


def services_table(
    found: Sequence[ServiceEndpoints], filters: Filters, *, signing: bool = False
) -> str:
    """The table of ``get svc -A -o wide`` (ENDPOINTS included) over the services the
    filters pick, as an HTML fragment (what the live page swaps in). ``signing``: the
    table these rows go into shows signing in use (an unsigned service's PROOF then
    reads ``unproven``, as in it, whatever these rows alone would say)."""
    return "".join(services_table_parts(found, filters, signing=signing))


def services_table_parts(
    found: Sequence[ServiceEndpoints], filters: Filters, *, signing: bool = False
) -> Iterator[str]:
    """``services_table`` in parts of ``CHUNK_ROWS`` rows, rendered as they are asked
    for: a page of many services goes out (and the browser reads it) while the rest is
    still being rendered."""
    view = ServiceListing(Format(Output.wide.value), all_namespaces=True)
    chosen = [each for each in found if filters.matches(each)]
    view.endpoints = {each.key: each.endpoints for each in chosen}
    records = [each.record for each in chosen]
    view.signing = signing
    view.seen(records)
    if not records:
        yield '<p class="empty">No services found.</p>'
        return
    header = view.header()
    named = header.index("NAME")
    # The header, then the rows in blocks of CHUNK_ROWS, each a table of its own whose
    # columns line up with the header's (fixed widths, in STYLE), so the browser lays out
    # and paints only the blocks in view (content-visibility): a change to one row of
    # 10,000 then costs it milliseconds, not a layout of the whole table.
    # Whether signing is in use here: the live script asks rows it fetches to agree.
    signed = ' data-signing="1"' if view.signing else ""
    yield f'<table class="head"{signed}>{_head(header)}</table>'
    batch: list[str] = []
    for record in records:
        service = record.service
        # Each row names its service (data-key: NAMESPACE/NAME), for the live script.
        key = f' data-key="{escape(service.namespace)}/{escape(service.name)}"'
        href = escape(service_path(service.namespace, service.name))
        for row in view.rows(record):
            shown = [escape(cell) for cell in row]
            shown[named] = f'<a href="{href}">{shown[named]}</a>'
            batch.append(_row(shown, key))
        if len(batch) >= CHUNK_ROWS:
            yield _block(batch)
            batch = []
    if batch:
        yield _block(batch)


def _block(rows: list[str]) -> str:
    return '<div class="rows"><table><tbody>' + "".join(rows) + "</tbody></table></div>"


def _head(header: Sequence[str]) -> str:
    return "<thead><tr>" + "".join(f"<th>{escape(cell)}</th>" for cell in header) + "</tr></thead>"


def _row(cells: Sequence[str], attributes: str = "") -> str:
    """A row of cells that are HTML already."""
    return f"<tr{attributes}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A table of a header (escaped here) and rows whose cells are HTML already."""
    body = "".join(_row(row) for row in rows)
    return f"<table>{_head(header)}<tbody>{body}</tbody></table>"


def _text_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    return _table(header, [[escape(cell) for cell in row] for row in rows])


def service_path(namespace: str, name: str) -> str:
    """A service's page, each name quoted as one path segment."""
    return f"/services/{quote(namespace, safe='')}/{quote(name, safe='')}"


def service_page(
    namespace: str, name: str, described: str, endpoints: Endpoints, *, user: str | None
) -> str:
    """Page (b): ``describe svc``'s text, then ``get endpoints NAME -o wide``'s table."""
    from cli.serviceviews import ENDPOINT_WIDE_COLUMNS, wide_rows

    history = escape(service_path(namespace, name) + "/history")
    body = (
        '<p><a href="/">All services</a> | '
        f'<a href="{history}">History</a></p>'
        f'<h2>Definition</h2><pre class="describe">{escape(described)}</pre>'
        "<h2>Endpoints</h2>" + _text_table(ENDPOINT_WIDE_COLUMNS, wide_rows(endpoints))
    )
    return _page(f"{namespace}/{name}", body, user=user)


def history_page(
    namespace: str,
    name: str,
    rows: Sequence[Sequence[str]],
    diff: tuple[int, int, Sequence[FieldChange]] | None,
    *,
    user: str | None,
) -> str:
    """Page (c): ``history svc NAME``'s table, and the changes between two revisions
    (``?from=SEQ&to=SEQ``) in the words of its CHANGES column."""
    from cli.serviceviews import HISTORY_COLUMNS

    back = escape(service_path(namespace, name))
    body = f'<p><a href="/">All services</a> | <a href="{back}">Service</a></p>'
    if diff is not None:
        start, end, changed = diff
        body += f"<h2>Changes from seq {start} to seq {end}</h2>"
        if changed:
            cells = [[c.field, c.before, c.after] for c in changed]
            body += _text_table(("FIELD", f"AT SEQ {start}", f"AT SEQ {end}"), cells)
        else:
            body += '<p class="empty">No field differs.</p>'
    body += (
        '<h2>Events</h2><form class="filters" method="get">'
        '<label>from <input name="from" placeholder="seq"></label>'
        '<label>to <input name="to" placeholder="seq"></label>'
        '<button type="submit">Diff</button></form>' + _text_table(HISTORY_COLUMNS, rows)
    )
    return _page(f"History of {namespace}/{name}", body, user=user)


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


def services_page(
    found: Sequence[ServiceEndpoints],
    filters: Filters,
    *,
    user: str | None,
    mark: tuple[int, int | None] | None = None,
) -> str:
    """Page (a): every service the filters pick, live from ``mark`` (where the UI's
    reader stood before the services were read: its stream opens there)."""
    return "".join(services_page_parts(found, filters, user=user, mark=mark))


def services_page_parts(
    found: Sequence[ServiceEndpoints],
    filters: Filters,
    *,
    user: str | None,
    mark: tuple[int, int | None] | None = None,
) -> Iterator[str]:
    """``services_page`` in parts, as ``services_table_parts`` renders its rows."""
    since = ""
    if mark is not None:
        position, moves = mark
        since = f' data-since="{position}"' + ("" if moves is None else f' data-moves="{moves}"')
    yield _page_head("Services", user=user) + _filters_form(filters) + f'<div id="services"{since}>'
    yield from services_table_parts(found, filters)
    yield '</div><script src="/live.js" defer></script>' + _PAGE_END


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
