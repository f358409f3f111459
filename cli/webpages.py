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
    "services_page",
    "services_table",
]

# The UI's only script, served as /live.js (the Content-Security-Policy allows no inline
# script). Each element with ``data-live="URL"`` is re-fetched from that URL and swapped
# in: on each server-sent event that concerns it (with ``data-namespace`` and
# ``data-name``, only that service's: a log event's subject ends in
# ``<namespace>.<name>``, an ``endpoints`` event names both), on each (re)connect, and
# every ``data-every`` seconds if given (ages move on). One fetch at a time per element,
# however fast events come. The HTML swapped in was escaped on the server; an event's
# data is only compared, never put in the page. Signed out (401): the page reloads, and
# is sent to sign in.
LIVE_JS = """\
const parts = Array.from(document.querySelectorAll("[data-live]"), (element) => ({
  element, busy: false, again: false,
}));
async function refresh(part) {
  if (part.busy) { part.again = true; return; }
  part.busy = true;
  try {
    do {
      part.again = false;
      const response = await fetch(part.element.dataset.live);
      if (response.status === 401) { location.reload(); return; }
      part.element.innerHTML = await response.text();
    } while (part.again);
  } catch (error) {
    // The network failed: the next event, or the reconnect, fetches again.
  } finally {
    part.busy = false;
  }
}
function changed(namespace, name) {
  for (const part of parts) {
    const want = part.element.dataset;
    if (want.name === undefined || (want.namespace === namespace && want.name === name)) {
      refresh(part);
    }
  }
}
function data(event) {
  try { return JSON.parse(event.data) || {}; } catch (error) { return {}; }
}
const source = new EventSource("/events");
source.onopen = () => parts.forEach(refresh);
source.onmessage = (event) => {
  const tokens = String(data(event).subject || "").split(".");
  changed(tokens[tokens.length - 2], tokens[tokens.length - 1]);
};
source.addEventListener("endpoints", (event) => {
  const moved = data(event);
  changed(moved.namespace, moved.name);
});
for (const part of parts) {
  const every = Number(part.element.dataset.every);
  if (every > 0) setInterval(() => refresh(part), every * 1000);
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

STYLE = (
    "body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}"
    "th,td{text-align:left;padding:.2em .8em;border-bottom:1px solid #ddd;font-size:90%}"
    "th{background:#f4f4f4}.error{color:#a00}form.filters input{margin-right:.5em}"
    "#banner{background:#fff4d6;border:1px solid #e0c060;padding:.5em}"
    "form.travel{display:inline-block;margin-right:1em}#travel-seq{width:20em}"
    "#first-break{font-weight:bold;font-size:110%}"
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
    who = (
        f'<form method="post" action="/logout">signed in as {escape(user)} '
        '<button type="submit">Sign out</button></form>'
        if user
        else ""
    )
    tags = "".join(f'<script src="{escape(src)}" defer></script>' for src in scripts)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<title>{escape(title)} - SkyFlow</title><link rel="stylesheet" href="/ui.css"></head>'
        f"<body><header>{who}</header><h1>{escape(title)}</h1>{body}{tags}</body></html>"
    )


def services_table(
    records: Sequence[ServiceRecord],
    endpoints: Mapping[ServiceKey, Endpoints] | None,
    filters: Filters,
    moment: Moment | None = None,
) -> str:
    """The table of ``get svc -A -o wide`` (ENDPOINTS included when known) over the
    services the filters pick, as an HTML fragment (what the live page swaps in). At a
    past ``moment``, AGE reads as it did then, and each link keeps the moment."""
    moment = moment or Moment(0)
    view = ServiceListing(Format(Output.wide.value), all_namespaces=True, now=moment.time)
    known = endpoints if endpoints is not None else {}
    chosen = [r for r in records if filters.matches(r, known.get(r.key))]
    if endpoints is not None:
        view.endpoints = {r.key: endpoints[r.key] for r in chosen if r.key in endpoints}
    view.seen(chosen)
    if not chosen:
        return '<p class="empty">No services found.</p>'
    header = view.header()
    named = header.index("NAME")

    def cells(record: ServiceRecord, row: list[str]) -> list[str]:
        shown = [escape(cell) for cell in row]
        service = record.service
        href = moment.link(service_path(service.namespace, service.name))
        shown[named] = f'<a href="{escape(href)}">{shown[named]}</a>'
        return shown

    rows = [cells(record, row) for record in chosen for row in view.rows(record)]
    return _table(header, rows)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A table of a header (escaped here) and rows whose cells are HTML already."""
    head = "".join(f"<th>{escape(cell)}</th>" for cell in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


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


def services_page(
    records: Sequence[ServiceRecord],
    endpoints: Mapping[ServiceKey, Endpoints] | None,
    filters: Filters,
    *,
    user: str | None,
    moment: Moment | None = None,
    notes: Sequence[str] = (),
    query: str = "",
) -> str:
    """Page (a): every service the filters pick (``query``: the query string that
    picked them), live; or, at a past moment, as the registry was then (not live: no
    feed is opened; ``notes``: why no endpoints)."""
    moment = moment or Moment(0)
    table = services_table(records, endpoints, filters, moment)
    said = "".join(f'<p class="error">{escape(note)}</p>' for note in notes)
    live = "" if moment.past else escape("/services/table" + (f"?{query}" if query else ""))
    body = (
        _travel(moment, "/", filters.query())
        + _filters_form(filters, moment)
        + said
        + (f'<div id="services" data-live="{live}">' if live else '<div id="services">')
        + f"{table}</div>"
    )
    if not moment.past:  # the audit is of the log as it is now
        body += '<p><a href="/audit">Audit the log</a></p>'
    scripts = ["/travel.js"] if moment.past else ["/live.js", "/travel.js"]
    return _page("Services", body, user=user, scripts=scripts)


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
