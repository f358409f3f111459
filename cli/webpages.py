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
from datetime import datetime
from html import escape
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

from cli.options import Format, Output
from cli.parse import parse_name
from cli.views import ServiceListing
from registry.errors import InvalidInput

if TYPE_CHECKING:
    from cli.auditviews import Audit
    from cli.selector import Selector
    from registry.discovery.endpoints import Endpoints
    from registry.discovery.tasks import LiveTask
    from registry.services.diff import FieldChange
    from registry.services.projection import ServiceKey, ServiceRecord
    from registry.services.when import When
    from registry.sites.links import SiteReport

__all__ = [
    "LIVE_JS",
    "STYLE",
    "TRAVEL_JS",
    "Filters",
    "Moment",
    "audit_page",
    "error_fragment",
    "error_page",
    "history_page",
    "login_page",
    "parse_filters",
    "past_service_fragment",
    "service_fragment",
    "service_page",
    "service_path",
    "services_page_parts",
    "services_table",
    "sites_fragment",
    "sites_page",
]

# The UI's only script, served as /live.js (the Content-Security-Policy allows no inline
# script), with one EventSource for the whole page. Each element with ``data-live="URL"``
# is re-fetched from that URL and swapped in: on each server-sent event that concerns it
# (with ``data-namespace`` and ``data-name``, only that service's: an event names both),
# on each (re)connect, and every ``data-every`` seconds if given (ages move on). One
# fetch at a time per element, the changes that come meanwhile gathered into the next.
#
# The services table (``#services``) is fetched more sparingly. Its page was rendered at
# a mark (``data-since``, ``data-moves``: where the UI's reader of the log and of
# endpoints stood), and the stream opens from there, so it sees every change after the
# table it holds and need not fetch it again on opening. On a change of a service it
# fetches that service's rows alone (``?service=NAMESPACE/NAME``, the page's filters
# kept, ``signing=1`` when the table shows signing in use, so PROOF reads as it does)
# and puts them in the table's order; many at once, an event naming no service, a
# stream that says ``resync``, a reconnect, or a page without a mark: the whole table.
#
# The HTML swapped in was escaped on the server; an event's data only names what to
# fetch and is never put in the page. Signed out (401): the page reloads, and is sent to
# sign in.
LIVE_JS = """\
const holder = document.getElementById("services");
const marked = document.querySelector("[data-since]");
const MOST = 50;
const parts = Array.from(document.querySelectorAll("[data-live]"), (element) => ({
  element, busy: false, whole: false, pending: new Set(),
}));
function before(a, b) {
  return a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);
}
function place(element, row) {
  const rows = element.querySelectorAll("tbody tr[data-key]");
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
function swap(part, keys, html) {
  const element = part.element;
  const fresh = document.createElement("template");
  fresh.innerHTML = html;
  for (const key of keys) {
    const named = `tbody tr[data-key="${CSS.escape(key)}"]`;
    for (const old of element.querySelectorAll(named)) old.remove();
  }
  if (!element.querySelector("tbody tr[data-key]")) { part.whole = true; return; }
  for (const row of fresh.content.querySelectorAll("tbody tr[data-key]")) place(element, row);
}
async function rows(part) {
  const keys = [...part.pending];
  part.pending.clear();
  const url = new URL(part.element.dataset.live, location.href);
  for (const key of keys) url.searchParams.append("service", key);
  if (part.element.querySelector("table.head[data-signing]")) {
    url.searchParams.set("signing", "1");
  }
  const response = await fetch(url);
  if (response.status === 401) { location.reload(); return false; }
  if (response.ok) swap(part, keys, await response.text());
  else part.whole = true;
  return true;
}
async function refresh(part) {
  if (part.busy) return;
  part.busy = true;
  try {
    while (part.whole || part.pending.size) {
      if (!part.whole && part.pending.size <= MOST) {
        if (!(await rows(part))) return;
        continue;
      }
      part.whole = false;
      part.pending.clear();
      const response = await fetch(part.element.dataset.live);
      if (response.status === 401) { location.reload(); return; }
      part.element.innerHTML = await response.text();
    }
  } catch (error) {
    // The network failed: the next event, or the reconnect, fetches it whole.
    part.whole = true;
  } finally {
    part.busy = false;
  }
}
function whole(part) {
  part.whole = true;
  refresh(part);
}
function changed(namespace, name) {
  for (const part of parts) {
    const want = part.element.dataset;
    if (part.element === holder) {
      if (namespace && name) part.pending.add(namespace + "/" + name);
      else part.whole = true;
      refresh(part);
    } else if (want.name === undefined || (want.namespace === namespace && want.name === name)) {
      whole(part);
    }
  }
}
function data(event) {
  try { return JSON.parse(event.data) || {}; } catch (error) { return {}; }
}
const mark = new URLSearchParams();
if (marked) {
  mark.set("since", marked.dataset.since);
  if (marked.dataset.moves) mark.set("moves", marked.dataset.moves);
}
const source = new EventSource("/events" + (marked ? "?" + mark : ""));
let opened = false;
source.onopen = () => {
  // A marked page's first opening starts where its table stands: nothing to fetch for
  // it then; every other part, and every part on a reconnect, is fetched whole.
  for (const part of parts) if (opened || part.element !== marked) whole(part);
  opened = true;
};
source.onmessage = (event) => {
  const said = data(event);
  changed(said.namespace, said.name);
};
source.addEventListener("endpoints", (event) => {
  const moved = data(event);
  changed(moved.namespace, moved.name);
});
source.addEventListener("resync", () => parts.forEach(whole));
for (const part of parts) {
  const every = Number(part.element.dataset.every);
  if (every > 0) setInterval(() => whole(part), every * 1000);
}
"""

# Time travel's script, served as /travel.js: the slider shows the sequence it points at
# while it moves, and submits its form (a GET of the same page with ?at=) when let go.
TRAVEL_JS = """\
const slider = document.getElementById("travel-seq");
const shown = document.getElementById("travel-shown");
if (slider) {
  slider.addEventListener("input", () => { if (shown) shown.textContent = slider.value; });
  slider.addEventListener("change", () => slider.form.submit());
}
"""

# The services table's columns (get svc -A -o wide's), in % of the width: fixed, so its
# blocks of rows line up with its header without measuring them. Set by name (each
# table's <colgroup>), so a table without a column (ENDPOINTS, in a past without
# membership history) still lines up; a column not named here shares what is left.
_SERVICE_COLUMNS = {
    "NAMESPACE": 8,
    "NAME": 9,
    "TYPE": 7,
    "CLUSTER-IP": 11,
    "EXTERNAL-IP": 7,
    "PORT(S)": 10,
    "ENDPOINTS": 7,
    "AGE": 4,
    "TARGET-PORTS": 5,
    "SELECTOR": 8,
    "CLUSTER": 6,
    "REVISION": 6,
    "CREATED-BY": 7,
    "PROOF": 5,
}


def _column_class(name: str) -> str:
    """A column's class in the services table (``PORT(S)``: ``c-port-s``)."""
    return "c-" + "-".join("".join(c if c.isalnum() else " " for c in name.lower()).split())


STYLE = (
    "body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}"
    "th,td{text-align:left;padding:.2em .8em;border-bottom:1px solid #ddd;font-size:90%}"
    "th{background:#f4f4f4}.error{color:#a00}form.filters input{margin-right:.5em}"
    "#banner{background:#fff4d6;border:1px solid #e0c060;padding:.5em}"
    "form.travel{display:inline-block;margin-right:1em}#travel-seq{width:20em}"
    "#first-break{font-weight:bold;font-size:110%}"
    "#services table{table-layout:fixed;width:100%}#services td,#services th"
    "{overflow-wrap:anywhere;padding:.2em .4em}"
    # Headers break only where a word allows (CLUSTER-|IP), never inside ENDPOINTS.
    "#services th{overflow-wrap:normal;font-size:75%}#services td{font-size:85%}"
    "#services .rows{content-visibility:auto;contain-intrinsic-size:auto 5000px}"
    + "".join(
        f"#services col.{_column_class(n)}{{width:{w}%}}" for n, w in _SERVICE_COLUMNS.items()
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

    def matches(self, record: ServiceRecord, endpoints: Endpoints | None) -> bool:
        """Whether the filters pick the service (``endpoints`` None: not known, as in a
        past without membership history; such a service is never shown as unready)."""
        service = record.service
        if self.parsed_selector is not None and not self.parsed_selector.matches(service.labels):
            return False
        if self.type is not None and service.type.value != self.type:
            return False
        if self.unready and (endpoints is None or endpoints.ready > 0):
            return False
        return self.since is None or _changed_since(record, self.since)

    def query(self) -> dict[str, str]:
        """The filters given, as query parameters (what a link or form carries along)."""
        given = {
            "namespace": self.namespace,
            "selector": self.selector,
            "type": self.type,
            "unready": "1" if self.unready else None,
            "changed": self.changed,
        }
        return {k: v for k, v in given.items() if v}


def _changed_since(record: ServiceRecord, since: When) -> bool:
    """Whether the service's last event is at or after ``since`` (a sequence, or a time:
    when the server stored it, else the event's own time)."""
    from registry.services.when import AtSequence

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


@dataclass(frozen=True)
class Moment:
    """Where a page stands in the log: now (``at`` None), or the past a visitor asked
    for with ``?at=`` (as typed), which was the log up to ``seq``, stored at ``time``.
    ``last``: the log's last sequence now (the time-travel slider's end)."""

    last: int
    at: str | None = None
    seq: int = 0
    time: datetime | None = None

    @property
    def past(self) -> bool:
        return self.at is not None

    def link(self, path: str, query: Mapping[str, str] | None = None) -> str:
        """``path`` with ``query``, and with ``?at=`` on a past page (its links stay in
        the past), unescaped: pass it through ``escape`` into an attribute."""
        params = dict(query or {})
        if self.at is not None:
            params["at"] = self.at
        return f"{path}?{urlencode(params)}" if params else path

    def hidden(self) -> str:
        """A past page's forms carry its ``at`` along."""
        if self.at is None:
            return ""
        return f'<input type="hidden" name="at" value="{escape(self.at)}">'


def _stamp(moment: datetime | None) -> str:
    if moment is None:
        return "the start"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _travel(moment: Moment, path: str, keep: Mapping[str, str] | None = None) -> str:
    """The banner of a past page (with the way back to now), and time travel's two
    forms: a slider over the log's sequences, submitted when let go (``/travel.js``),
    and a typed sequence, time or while ago. Both GET ``path`` with ``?at=``, carrying
    ``keep`` (the page's filters) along."""
    carried = "".join(
        f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">'
        for k, v in (keep or {}).items()
    )
    banner = ""
    if moment.past:
        now = escape(Moment(moment.last).link(path, keep))
        banner = (
            f'<p id="banner">As the registry was at {escape(_stamp(moment.time))} '
            f'(log sequence {moment.seq}). <a id="now" href="{now}">Back to now</a></p>'
        )
    end = max(moment.last, 1)
    value = min(max(moment.seq, 1), end) if moment.past else end
    action = escape(path)
    return (
        banner + f'<div class="travel"><form id="travel" class="travel" method="get" '
        f'action="{action}">{carried}<label>Time travel: log sequence '
        f'<input type="range" id="travel-seq" name="at" min="1" max="{end}" value="{value}">'
        f'</label> <output id="travel-shown" for="travel-seq">{value}</output> '
        '<button type="submit">Go</button></form>'
        f'<form id="travel-typed" class="travel" method="get" action="{action}">{carried}'
        f'<label>at <input id="travel-at" name="at" value="{escape(moment.at or "")}" '
        'placeholder="1234, 90m or a time"></label> '
        '<button type="submit">Travel</button></form></div>'
    )


def _page(title: str, body: str, *, user: str | None = None, scripts: Sequence[str] = ()) -> str:
    return _page_head(title, user=user) + body + _page_end(scripts)


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


def _page_end(scripts: Sequence[str] = ()) -> str:
    """A page's scripts, and its end."""
    tags = "".join(f'<script src="{escape(src)}" defer></script>' for src in scripts)
    return f"{tags}</body></html>"


CHUNK_ROWS = 250  # rows of the services table rendered (and sent) at a time


def services_table(
    records: Sequence[ServiceRecord],
    endpoints: Mapping[ServiceKey, Endpoints] | None,
    filters: Filters,
    moment: Moment | None = None,
    *,
    signing: bool = False,
) -> str:
    """The table of ``get svc -A -o wide`` (ENDPOINTS included when known) over the
    services the filters pick, as an HTML fragment (what the live page swaps in). At a
    past ``moment``, AGE reads as it did then, and each link keeps the moment.
    ``signing``: the table these rows go into shows signing in use (an unsigned
    service's PROOF then reads ``unproven``, as in it, whatever these rows alone say)."""
    return "".join(services_table_parts(records, endpoints, filters, moment, signing=signing))


def services_table_parts(
    records: Sequence[ServiceRecord],
    endpoints: Mapping[ServiceKey, Endpoints] | None,
    filters: Filters,
    moment: Moment | None = None,
    *,
    signing: bool = False,
) -> Iterator[str]:
    """``services_table`` in parts of ``CHUNK_ROWS`` rows, rendered as they are asked
    for: a page of many services can go out while the rest is still being rendered."""
    moment = moment or Moment(0)
    view = ServiceListing(Format(Output.wide.value), all_namespaces=True, now=moment.time)
    known = endpoints if endpoints is not None else {}
    chosen = [r for r in records if filters.matches(r, known.get(r.key))]
    if endpoints is not None:
        view.endpoints = {r.key: endpoints[r.key] for r in chosen if r.key in endpoints}
    view.signing = signing
    view.seen(chosen)
    if not chosen:
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
    columns = "<colgroup>" + "".join(f'<col class="{_column_class(n)}">' for n in header)
    columns += "</colgroup>"
    yield f'<table class="head"{signed}>{columns}{_head(header)}</table>'
    batch: list[str] = []
    for record in chosen:
        service = record.service
        # Each row names its service (data-key: NAMESPACE/NAME), for the live script.
        key = f' data-key="{escape(service.namespace)}/{escape(service.name)}"'
        href = escape(moment.link(service_path(service.namespace, service.name)))
        for row in view.rows(record):
            shown = [escape(cell) for cell in row]
            shown[named] = f'<a href="{href}">{shown[named]}</a>'
            batch.append(_row(shown, key))
        if len(batch) >= CHUNK_ROWS:
            yield _block(columns, batch)
            batch = []
    if batch:
        yield _block(columns, batch)


def _block(columns: str, rows: list[str]) -> str:
    body = "".join(rows)
    return f'<div class="rows"><table>{columns}<tbody>{body}</tbody></table></div>'


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
    namespace: str, name: str, fragment: str, *, user: str | None, moment: Moment | None = None
) -> str:
    """Page (b): the service's ``service_fragment``, kept live (re-fetched when the
    service or its endpoints change, and every 5 s: heartbeat ages move on); or, at a
    past moment, its ``past_service_fragment``, not live."""
    moment = moment or Moment(0)
    path = service_path(namespace, name)
    links = [
        f'<a href="{escape(moment.link("/"))}">All services</a>',
        f'<a href="{escape(moment.link(path + "/history"))}">History</a>',
    ]
    if not moment.past:  # the audit is of the log as it is now
        links.append(f'<a href="{escape(path + "/audit")}">Audit</a>')
    if moment.past:
        shown = f'<div id="service">{fragment}</div>'
        scripts = ["/travel.js"]
    else:
        shown = (
            f'<div id="service" data-live="{escape(path + "/live")}" '
            f'data-namespace="{escape(namespace)}" data-name="{escape(name)}" data-every="5">'
            f"{fragment}</div>"
        )
        scripts = ["/live.js", "/travel.js"]
    body = _travel(moment, path) + f"<p>{' | '.join(links)}</p>" + shown
    return _page(f"{namespace}/{name}", body, user=user, scripts=scripts)


def past_service_fragment(described: str, endpoints: Endpoints | None, notes: Sequence[str]) -> str:
    """What page (b) shows of a service at a past moment: ``describe svc``'s text as it
    was, then the endpoints the membership history says served it then, in the columns
    of ``get endpoints NAME -o wide`` (``notes``: what that history cannot vouch for, or
    why there are none, as ``get endpoints --at`` words it)."""
    from cli.serviceviews import ENDPOINT_WIDE_COLUMNS, wide_rows

    said = "".join(f'<p class="error">{escape(note)}</p>' for note in notes)
    table = "" if endpoints is None else _text_table(ENDPOINT_WIDE_COLUMNS, wide_rows(endpoints))
    return (
        f'<h2>Definition</h2><pre class="describe" id="definition">{escape(described)}</pre>'
        f'<h2>Endpoints</h2>{said}<div id="endpoints">{table}</div>'
    )


def service_fragment(
    described: str,
    endpoints: Endpoints,
    tasks: Mapping[str, LiveTask],
    dns: Sequence[Sequence[str]],
    dns_command: str,
    membership: tuple[str | None, Sequence[Sequence[str]]],
) -> str:
    """What page (b) shows of a service, as a fragment (what the live page swaps in):
    ``describe svc``'s text; its endpoints in the columns of ``get endpoints -o wide``
    with each task's heartbeat, TTL and reason (``get tasks -o wide``'s); what
    ``dns_command`` (``skyctl dns`` and its flags) answers for it; its recent membership
    transitions (``describe``'s Membership: ``membership`` is what to say instead of
    rows, or None, and the rows)."""
    from cli.serviceviews import DNS_COLUMNS, ENDPOINT_LIVE_COLUMNS, wide_rows
    from cli.transitions import TRANSITION_COLUMNS

    instead, rows = membership
    transitions = (
        f'<p class="empty">{escape(instead)}</p>'
        if instead is not None
        else _text_table(TRANSITION_COLUMNS, rows)
    )
    return (
        f'<h2>Definition</h2><pre class="describe" id="definition">{escape(described)}</pre>'
        '<h2>Endpoints</h2><div id="endpoints">'
        + _text_table(ENDPOINT_LIVE_COLUMNS, wide_rows(endpoints, tasks))
        + f"</div><h2>DNS</h2><p>What <code>{escape(dns_command)}</code> "
        'answers for it now.</p><div id="dns">'
        + _text_table(DNS_COLUMNS, dns)
        + '</div><h2>Membership</h2><div id="membership">'
        + transitions
        + "</div>"
    )


def error_fragment(message: str) -> str:
    """A refusal in place of a live fragment (the service is gone, say)."""
    return f'<p class="error">error: {escape(message)}</p>'


def history_page(
    namespace: str,
    name: str,
    rows: Sequence[Sequence[str]],
    diff: tuple[int, int, Sequence[FieldChange]] | None,
    *,
    user: str | None,
    moment: Moment | None = None,
) -> str:
    """Page (c): ``history svc NAME``'s table (at a past moment, its events up to then),
    and the changes between two revisions (``?from=SEQ&to=SEQ``) in the words of its
    CHANGES column."""
    from cli.serviceviews import HISTORY_COLUMNS

    moment = moment or Moment(0)
    path = service_path(namespace, name)
    body = _travel(moment, path + "/history") + (
        f'<p><a href="{escape(moment.link("/"))}">All services</a> | '
        f'<a href="{escape(moment.link(path))}">Service</a></p>'
    )
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
        + moment.hidden()
        + '<label>from <input name="from" placeholder="seq"></label>'
        '<label>to <input name="to" placeholder="seq"></label>'
        '<button type="submit">Diff</button></form>' + _text_table(HISTORY_COLUMNS, rows)
    )
    return _page(f"History of {namespace}/{name}", body, user=user, scripts=["/travel.js"])


def _filters_form(filters: Filters, moment: Moment) -> str:
    def field(name: str, value: str | None, hint: str) -> str:
        return (
            f'<label>{escape(name)} <input name="{escape(name)}" '
            f'value="{escape(value or "")}" placeholder="{escape(hint)}"></label>'
        )

    checked = " checked" if filters.unready else ""
    return (
        '<form class="filters" method="get" action="/">'
        + moment.hidden()
        + field("namespace", filters.namespace, "all")
        + field("selector", filters.selector, "app=web,tier!=db")
        + field("type", filters.type, "ClusterIP")
        + field("changed", filters.changed, "since: 30m")
        + f'<label><input type="checkbox" name="unready" value="1"{checked}> '
        'no ready endpoint</label> <button type="submit">Filter</button></form>'
    )


def services_page_parts(
    records: Sequence[ServiceRecord],
    endpoints: Mapping[ServiceKey, Endpoints] | None,
    filters: Filters,
    *,
    user: str | None,
    moment: Moment | None = None,
    notes: Sequence[str] = (),
    query: str = "",
    mark: tuple[int, int | None] | None = None,
) -> Iterator[str]:
    """Page (a), in parts as ``services_table_parts`` renders its rows (the UI sends it
    as it renders): every service the filters pick (``query``: the query string that
    picked them), live from ``mark`` (where the UI's reader of the log and of endpoints
    stood before the services were read: the page's stream opens there); or, at a past
    moment, as the registry was then (not live: no feed is opened; ``notes``: why no
    endpoints)."""
    moment = moment or Moment(0)
    said = "".join(f'<p class="error">{escape(note)}</p>' for note in notes)
    live = ""
    if not moment.past:
        live = ' data-live="' + escape("/services/table" + (f"?{query}" if query else "")) + '"'
        if mark is not None:
            position, moves = mark
            live += f' data-since="{position}"'
            live += "" if moves is None else f' data-moves="{moves}"'
    yield (
        _page_head("Services", user=user)
        + _travel(moment, "/", filters.query())
        + _filters_form(filters, moment)
        + said
        + f'<div id="services"{live}>'
    )
    yield from services_table_parts(records, endpoints, filters, moment)
    end = "</div>"
    if not moment.past:  # the audit is of the log as it is now
        end += '<p><a href="/audit">Audit the log</a> | <a href="/sites">Sites</a></p>'
    scripts = ["/travel.js"] if moment.past else ["/live.js", "/travel.js"]
    yield end + _page_end(scripts)


def login_page(message: str | None = None) -> str:
    """The sign-in form: the credentials skyctl takes (a user and password, a token, or a
    creds file's contents, pasted: the form is urlencoded, and the contents are never
    written to a file on the server)."""
    line = f'<p class="error">{escape(message)}</p>' if message else ""
    body = (
        line + '<form method="post" action="/login">'
        '<p><label>User <input name="user" autocomplete="username"></label></p>'
        '<p><label>Password <input name="password" type="password" '
        'autocomplete="current-password"></label></p>'
        '<p><label>or token <input name="token" type="password"></label></p>'
        "<p><label>or a creds file's contents (what <code>--creds</code> reads)<br>"
        '<textarea name="creds" rows="8" cols="70" autocomplete="off" spellcheck="false" '
        'placeholder="-----BEGIN NATS USER JWT-----"></textarea></label></p>'
        '<p><button type="submit">Sign in</button></p></form>'
    )
    return _page("Sign in", body)


def sites_fragment(reports: Sequence[SiteReport]) -> str:
    """The sites page's live part: ``skyctl get sites``' table (``cli/siteviews.py``)
    and what the hub's views report of errors, or that there are none."""
    from cli.siteviews import SITE_COLUMNS, site_row

    if not reports:
        return (
            '<p class="empty">No sites: this server sources none (skyctl site init, run '
            "against a site's server, sets one up).</p>"
        )
    errors = "".join(
        f'<p class="error">warning: site {escape(r.site.name)}: {escape(error)}</p>'
        for r in reports
        for error in r.errors
    )
    return _text_table(SITE_COLUMNS, [site_row(r) for r in reports]) + errors


def sites_page(fragment: str, *, user: str | None) -> str:
    """The hub's sites, kept live (re-fetched every 2 s: the lease moves with silence,
    not with events): each site's link, last word, lag, newest message, lease state and
    policy, as ``skyctl get sites`` shows them."""
    body = (
        '<p><a href="/">All services</a></p>'
        f'<div id="sites" data-live="/sites/live" data-every="2">{fragment}</div>'
        '<p class="note">LINK is up while the hub has heard from the site within its '
        "lease; STATE is live, stale (silent past the lease: what the hub has of it is "
        "old) or revoked (silent past the grace of revoke-after). Never live when "
        "unheard.</p>"
    )
    return _page("Sites", body, user=user, scripts=["/live.js"])


def error_page(message: str, *, user: str | None = None) -> str:
    """A refusal, as the CLI words it (one line)."""
    return _page("Error", f'<p class="error">error: {escape(message)}</p>', user=user)


def audit_page(audit: Audit, *, service: tuple[str, str] | None = None, user: str | None) -> str:
    """``audit verify``'s result, for the whole log or one service's chain: the verdict
    line, the first break on its own, the counts, then every line the command prints."""
    from cli.auditviews import ACTOR_STATUSES

    links = ['<a href="/">All services</a>']
    if service is not None:
        links.append(f'<a href="{escape(service_path(*service))}">Service</a>')
        links.append('<a href="/audit">Audit the whole log</a>')
    holds = "ok" if audit.holds else "error"
    body = f"<p>{' | '.join(links)}</p>" + (
        f'<p id="verdict" class="{holds}">{escape(audit.verdict)}</p>'
    )
    first = audit.first_break
    if first is not None:
        body += f'<p id="first-break" class="error">First break: {escape(first.text)}</p>'
    counts = [
        ["broken", str(audit.breaks)],
        ["acknowledged", str(audit.acknowledged)],
        ["unverified actors", str(audit.unproven)],
    ]
    shown = (*ACTOR_STATUSES, "replayed", "expired", "forged")
    counts += [[f"actors {status}", str(audit.proofs[status])] for status in shown]
    body += "<h2>Counts</h2>" + _text_table(("WHAT", "HOW MANY"), counts)
    if audit.actors is not None:
        body += f'<p id="actors">{escape(audit.actors)}</p>'
    if not audit.trusted:
        body += (
            '<p class="note">Read without a trust file: an actor is judged by its '
            "signature alone (skyctl ui --trust FILE lists every actor no trusted key "
            "verifies).</p>"
        )
    if service is not None:
        body += (
            '<p class="note">One service\'s chain alone: which addresses the log says '
            "each service holds is checked by the audit of the whole log.</p>"
        )
    lines = "\n".join(escape(str(f)) for f in audit.findings)
    body += "<h2>Findings</h2>" + (
        f'<pre id="findings">{lines}</pre>' if lines else '<p class="empty">None.</p>'
    )
    title = "Audit" if service is None else f"Audit of {service[0]}/{service[1]}"
    return _page(title, body, user=user)
