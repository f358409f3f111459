"""The web UI's server (``skyctl ui``): a Starlette app, read-only, over the library.

Who reads: a person signs in with the credentials skyctl takes, and the app opens a NATS
connection as that person (``Connection.open``), so nats-server enforces that person's
roles on every read, exactly as for the CLI. One connection per person (the same user
signed in from two browsers shares it), closed when the last of their sessions signs out.
Sessions live on the server; the browser holds only a random id, in an HttpOnly,
SameSite=Strict cookie. ``anonymous``: no sign-in, every visitor reads over the app's own
connection (a local registry without users).

Live: ``GET /events`` is a server-sent event stream of the registry's changes, each with
``id:`` its stream sequence. One ``Hub`` per person reads the log once for all their
browsers; a browser that reconnects with ``Last-Event-ID`` first gets exactly what it
missed (read from the log), then the live changes, with nothing doubled or lost.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import secrets
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from cli.connection import Connection
from cli.parse import parse_name
from cli.terminal import safe
from cli.webpages import (
    LIVE_JS,
    STYLE,
    TRAVEL_JS,
    Filters,
    Moment,
    audit_page,
    error_fragment,
    error_page,
    history_page,
    login_page,
    parse_filters,
    past_service_fragment,
    service_fragment,
    service_page,
    services_page_parts,
    services_table,
    sites_fragment,
    sites_page,
)
from registry.errors import (
    InvalidInput,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    RegistryError,
)

if TYPE_CHECKING:
    from registry.client import Registry
    from registry.discovery.endpoints import Endpoints
    from registry.discovery.follower import ServiceEndpoints
    from registry.services.feed import LogRecord
    from registry.services.projection import ServiceKey, ServiceRecord
    from registry.services.proof import Trust
    from registry.services.when import When

# What the services page shows: the services, their endpoints where known, when, and
# why no endpoints are shown (a line as the CLI words it).
Listed = tuple["list[ServiceRecord]", "dict[ServiceKey, Endpoints] | None", "Moment", "list[str]"]

__all__ = ["COOKIE", "HEADERS", "DnsView", "EndpointsMoved", "Hub", "Sessions", "make_app"]

COOKIE = "skyflow_session"
_FORM_LIMIT = 64 * 1024  # a sign-in form is a few hundred bytes
SESSION_LIFETIME_S = 12 * 3600.0  # a working day: then sign in again
KEEPALIVE = 15.0  # seconds between SSE comments, so a gone browser is noticed
_CLOSE_S = 2.0  # seconds a person's readers and connection get to close
# The services page sent as it renders, a block of rows at a time (see docs/benchmarks.md).
STREAM_PAGE = True
RECENT_MOVES = 10_000  # endpoint moves a hub keeps for pages whose stream is opening


@dataclass(frozen=True)
class DnsView:
    """Which ``skyctl dns`` a service page shows the answers of: its ``--domain``, TTL and
    ``--cluster-ips`` (the defaults of ``skyctl dns``; in ``skyctl agent --ui --dns``,
    the agent's own DNS server's)."""

    domain: str = "skyflow."
    ttl: int = 5
    cluster_ips: bool = False


@dataclass(frozen=True)
class EndpointsMoved:
    """A service's endpoints changed (a task came, went, turned ready or drained) with
    the service itself unchanged: from the liveness stream, whose sequences are not the
    log's, so it goes out as an ``endpoints`` event without an id."""

    namespace: str
    name: str
    status: str


class Hub:
    """One reader of the log (and one follower of endpoints) serving every open browser
    of one person: each browser's queue gets every record after the moment it joined
    (``position``: the last sequence handed out when it joined).

    A page rendered by the UI carries ``mark()``: the log position and the count of
    endpoint moves the hub had handed out when its reads began. Its stream, joining with
    that mark, gets what came after it (the records from the log; the moves from the
    ``RECENT_MOVES`` kept here), so the page need not read its whole table again when its
    stream opens; where the moves since cannot be told (the follower was not reading
    then, or restarted since, or too many came), the stream says ``resync``."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.queues: set[asyncio.Queue[LogRecord | EndpointsMoved | BaseException]] = set()
        self.position = 0
        self.moves = 0  # endpoint moves handed out so far
        self.recent: collections.deque[tuple[int, EndpointsMoved]] = collections.deque(
            maxlen=RECENT_MOVES
        )
        self.following = False  # the endpoints follower is through its first read
        self.floor = 0  # a mark below this may have missed moves (the follower restarted)
        self._started: asyncio.Future[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """The reader of the log (and the follower of endpoints) running for this person;
        the reader's refusal (``RegistryError``) if the server refuses it."""
        if self._started is None:
            self._started = asyncio.get_running_loop().create_future()
            self._tasks = [asyncio.create_task(self._read())]
            self._tasks.append(asyncio.create_task(self._follow_endpoints()))
        await asyncio.shield(self._started)

    def mark(self) -> tuple[int, int | None]:
        """Where the hub stands: the last log sequence, and the endpoint moves handed out
        (None while the follower is not following: moves cannot be told from it then)."""
        return self.position, self.moves if self.following else None

    async def join(
        self, moves: int | None = None
    ) -> tuple[
        asyncio.Queue[LogRecord | EndpointsMoved | BaseException], int, list[EndpointsMoved] | None
    ]:
        """A queue of the records after the returned position, and the endpoint moves
        after ``moves`` (a page's mark) that it will not get (None: cannot be told)."""
        await self.start()
        queue: asyncio.Queue[LogRecord | EndpointsMoved | BaseException] = asyncio.Queue()
        self.queues.add(queue)  # with the position in the same step: nothing falls between
        return queue, self.position, self._moves_after(moves)

    def _moves_after(self, mark: int | None) -> list[EndpointsMoved] | None:
        if mark is None or not self.following or not self.floor <= mark <= self.moves:
            return None
        if self.moves - mark > len(self.recent):
            return None  # some have been forgotten
        return [moved for count, moved in self.recent if count > mark]

    def leave(self, queue: asyncio.Queue[LogRecord | EndpointsMoved | BaseException]) -> None:
        self.queues.discard(queue)

    def _send(self, item: LogRecord | EndpointsMoved | BaseException) -> None:
        for queue in self.queues:
            queue.put_nowait(item)

    async def _read(self) -> None:
        from registry.services.when import AtSequence

        assert self._started is not None
        try:
            self.position = await self.registry.log.last_sequence()
            self._started.set_result(None)
            async for record in self.registry.events(
                since=AtSequence(self.position + 1), follow=True
            ):
                self.position = record.seq
                self._send(record)
        except Exception as exc:  # told to every browser; the next join starts afresh
            if not self._started.done():
                self._started.set_exception(exc)
            self._send(exc)
            self._started = None
            for task in self._tasks:
                if task is not asyncio.current_task():
                    task.cancel()  # the endpoints follower, started with this reader

    async def _follow_endpoints(self) -> None:
        """Endpoint changes that leave the service as it was (a service's own changes
        come from the log, with their sequence). A person who may not read tasks gets
        none: their page says why when it reads."""
        from registry.discovery.follower import Discovered

        try:
            async with self.registry.follow_endpoints() as follower:
                async for item in follower:
                    if isinstance(item, Discovered):
                        # Marks from before (a follower that stopped) may have missed
                        # moves: one past them, none of them is replayable.
                        self.moves += 1
                        self.floor = self.moves
                        self.recent.clear()
                        self.following = True
                    elif item.change is None:
                        service = item.service.record.service
                        moved = EndpointsMoved(
                            service.namespace, service.name, item.service.endpoints.status
                        )
                        self.moves += 1
                        self.recent.append((self.moves, moved))
                        self._send(moved)
        except RegistryError:
            pass
        finally:
            self.following = False

    async def close(self) -> None:
        """Stop reading, and end every open stream (the UI is stopping, or the person's
        last session ended), so no response outlives it."""
        self._send(ConnectionError("the UI stopped reading for this person"))
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            # Bounded: a reader's clean-up (a consumer deleted on the server) must not
            # hold a sign-out or the UI's stop; what is still running is left cancelled.
            await asyncio.wait(self._tasks, timeout=_CLOSE_S)


@dataclass
class Person:
    """A signed-in person: their connection, their hub, and their sessions."""

    name: str
    registry: Registry
    hub: Hub
    sessions: set[str] = field(default_factory=set)


class Sessions:
    """Sessions by random id, and people by how they connect (``Connection.reach``). A
    session ends when signed out, or ``lifetime`` seconds after it began (``clock``)."""

    def __init__(
        self,
        base: Connection,
        *,
        anonymous: bool,
        lifetime: float = SESSION_LIFETIME_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base = base
        self.anonymous = anonymous
        self.lifetime = lifetime
        self.clock = clock
        self.by_id: dict[str, Person] = {}
        self.ends: dict[str, float] = {}  # by session id: when it ends, on ``clock``
        self.people: dict[tuple[str | None, ...], Person] = {}
        self._lock = asyncio.Lock()

    async def sign_in(
        self, user: str | None, password: str | None, token: str | None, creds: str | None = None
    ) -> str:
        """A new session's id, over the person's connection (opened now if it is their
        first); the server's refusal (``RegistryError``) if it refuses them. ``creds``: a
        creds file's contents, handed to the client as they are (never written to a
        file), checked first as ``--creds`` checks a file."""
        if user is None and token is None and creds is None:
            raise InvalidInput(
                "user", "", "sign in with a user and password, a token, or a creds file"
            )
        name = user or "token"
        if creds is not None:
            from registry.services.proof import Signer

            signer = Signer.from_creds_text(creds, "pasted")
            name, creds = signer.actor, signer.creds_text()
        # Nothing of the UI's own identity carries over: only its server and TLS trust;
        # and nothing of the process's environment (NATS_USER, NATS_CREDS...), which is
        # the UI's own (or, in the agent, a hosted command's of the moment).
        unset: dict[str, Any] = dict.fromkeys(("creds", "nkey", "inbox_prefix"))
        conn = replace(
            self.base,
            user=user,
            password=password,
            token=token,
            creds_text=creds,
            environment=False,
            **unset,
        )
        async with self._lock:
            person = self.people.get(conn.reach())
            if person is None:
                registry = await conn.open(keep_reconnecting=True)
                person = Person(name, registry, Hub(registry))
                self.people[conn.reach()] = person
            session = secrets.token_urlsafe(32)
            person.sessions.add(session)
            self.by_id[session] = person
            self.ends[session] = self.clock() + self.lifetime
            return session

    async def anonymous_person(self) -> Person:
        async with self._lock:
            person = self.people.get(())
            if person is None:
                registry = await self.base.open(keep_reconnecting=True)
                person = Person("", registry, Hub(registry))
                self.people[()] = person
            return person

    async def person(self, request: Request) -> Person | None:
        if self.anonymous:
            return await self.anonymous_person()
        session = request.cookies.get(COOKIE, "")
        if self.ends.get(session, 0.0) <= self.clock():
            await self.sign_out(session)  # unknown, or over: signed out now
            return None
        return self.by_id.get(session)

    async def sign_out(self, session: str) -> None:
        async with self._lock:
            self.ends.pop(session, None)
            person = self.by_id.pop(session, None)
            if person is None:
                return
            person.sessions.discard(session)
            if not person.sessions:
                self.people = {k: p for k, p in self.people.items() if p is not person}
                await _close(person)

    async def close(self) -> None:
        for person in list(self.people.values()):
            await _close(person)
        self.people.clear()
        self.by_id.clear()
        self.ends.clear()


async def _close(person: Person) -> None:
    await person.hub.close()
    with contextlib.suppress(Exception):
        async with asyncio.timeout(_CLOSE_S):  # (not wait_for: see pyproject)
            await person.registry.close()


# On every page: scripts and styles only from the UI itself (no inline script runs, so
# markup that slipped past escaping could not run either), no framing, no referrer.
HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _html(text: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(text, status, headers=HEADERS)


def _event(record: LogRecord) -> str:
    from events.subjects import parse_subject
    from registry.log.entry import Entry

    entry = record.entry
    kind = type(entry.event).__name__ if isinstance(entry, Entry) else "Skipped"
    fields: dict[str, Any] = {"seq": record.seq, "type": kind, "subject": record.message.subject}
    with contextlib.suppress(ValueError):  # not a service's subject: the page reads it all
        fields["namespace"], fields["name"] = parse_subject(record.message.subject)
    return f"id: {record.seq}\ndata: {json.dumps(fields)}\n\n"


def make_app(
    base: Connection,
    *,
    anonymous: bool = False,
    dns: DnsView | None = None,
    trust: Trust | None = None,
) -> Starlette:
    """The UI's ASGI app, reading as whoever signs in on ``base``'s server (or, with
    ``anonymous``, over ``base`` itself); a service's page shows what the ``dns`` server
    answers for it (``skyctl dns``'s defaults unless given); ``trust``: the keys that
    prove an actor, as ``--trust`` gives them to the CLI (the audit and PROOF columns
    use them)."""
    # The settings as given, not filled in from the process's environment at each
    # sign-in (in the agent, that is a hosted command's of the moment).
    sessions = Sessions(replace(base, environment=False), anonymous=anonymous)
    dns_view = dns or DnsView()

    async def signed_in(request: Request) -> Person | Response:
        try:
            person = await sessions.person(request)
        except RegistryError as exc:  # --anonymous: the UI's own connection failed
            return _html(error_page(safe(str(exc))), 503)
        if person is not None:
            return person
        if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
            return RedirectResponse("/login", 303)
        return _html(login_page("Sign in first."), 401)

    async def read(
        request: Request, *, page: bool = False
    ) -> tuple[Person, Listed, Filters, tuple[int, int | None] | None] | Response:
        """The services the query asks for, as the person may read them, now or at the
        query's ``at`` (``?service=NAMESPACE/NAME``, repeated, for the table alone: only
        those, each read as ``get svc NAME`` reads it: what the live page swaps in); for
        a live ``page``, the hub's mark taken before reading (None if its reader cannot
        start); else the page saying why not (a bad filter or moment: 400; the server's
        refusal, as the CLI words it: 403)."""
        person = await signed_in(request)
        if isinstance(person, Response):
            return person
        try:
            filters = parse_filters(request.query_params)
            at, when = _when(request)
            only = [] if page else [_key(v) for v in request.query_params.getlist("service")]
            if len(only) > MOST_SERVICES:
                raise InvalidInput("service", str(len(only)), f"name at most {MOST_SERVICES}")
        except InvalidInput as exc:
            return _html(error_page(str(exc), user=person.name), 400)
        registry = person.registry
        mark = None
        try:
            if when is None and only:
                found = await _some(registry, only, filters.namespace)
                records = [f.record for f in found]
                listed: Listed = (records, {f.key: f.endpoints for f in found}, Moment(0), [])
            elif when is None:
                if page:
                    with contextlib.suppress(RegistryError):  # the page says why, below
                        await person.hub.start()
                        mark = person.hub.mark()
                found = await registry.list_endpoints(filters.namespace)
                # The slider's end: where the hub stood (no request), else the log's.
                last = mark[0] if mark is not None else await registry.log.last_sequence()
                listed = (
                    [f.record for f in found],
                    {f.key: f.endpoints for f in found},
                    Moment(last),
                    [],
                )
            else:
                listed = await _past_services(registry, at, when, filters.namespace)
                if only:
                    keys = set(only)
                    listed = ([r for r in listed[0] if r.key in keys], *listed[1:])
        except InvalidInput as exc:  # a sequence past the log's end
            return _html(error_page(str(exc), user=person.name), 400)
        except RegistryError as exc:
            return _html(error_page(safe(str(exc)), user=person.name), 403)
        return person, listed, filters, mark

    async def services(request: Request) -> Response:
        got = await read(request, page=True)
        if isinstance(got, Response):
            return got
        person, (records, endpoints, moment, notes), filters, mark = got
        parts = services_page_parts(
            records,
            endpoints,
            filters,
            user=person.name or None,
            moment=moment,
            notes=notes,
            query=request.url.query,
            mark=mark,
        )
        if not STREAM_PAGE:
            return _html("".join(parts))
        return StreamingResponse(_paced(parts), headers=HEADERS, media_type="text/html")

    async def table(request: Request) -> Response:
        got = await read(request)
        if isinstance(got, Response):
            return got
        _, (records, endpoints, moment, _), filters, _ = got
        signing = request.query_params.get("signing") == "1"  # the page's table's
        return _html(services_table(records, endpoints, filters, moment, signing=signing))

    def one_service(
        show: Callable[[Person, str, str, Request], Awaitable[str]], *, fragment: bool = False
    ) -> Callable[[Request], Awaitable[Response]]:
        """A page of the service the path names, each part checked as the CLI checks a
        name before anything is asked of the server; a refusal as the CLI words it: a bad
        value 400, a service that is not there 404, what the person may not read 403 (a
        ``fragment``'s refusal is a fragment too, for the live page to swap in)."""

        def refused(message: str, person: Person, status: int) -> Response:
            if fragment:
                return _html(error_fragment(message), status)
            return _html(error_page(message, user=person.name), status)

        async def page(request: Request) -> Response:
            person = await signed_in(request)
            if isinstance(person, Response):
                return person
            try:
                namespace = parse_name(request.path_params["namespace"], "namespace")
                name = parse_name(request.path_params["name"])
                return _html(await show(person, namespace, name, request))
            except InvalidInput as exc:
                return refused(str(exc), person, 400)
            except RegistryError as exc:
                status = 404 if isinstance(exc, NotFound) else 403
                return refused(safe(str(exc)), person, status)

        return page

    async def service_view(person: Person, namespace: str, name: str, request: Request) -> str:
        """The service page's live part: its definition, endpoints with their tasks'
        heartbeats, DNS answers and recent membership, read now."""
        from cli.serviceviews import (
            dns_rows,
            endpoints_and_tasks,
            membership,
            place,
            recent_transitions,
            render,
        )

        registry = person.registry
        record = await registry.get(namespace, name)
        items = await registry.history(namespace, name)
        endpoints, tasks = await endpoints_and_tasks(registry, record)
        try:
            transitions = membership(await recent_transitions(registry, record))
        except RegistryError as exc:  # the rest of the page is still worth seeing
            transitions = (f"<not readable: {safe(str(exc))}>", [])
        place(record, items)
        sites = await registry.readable_sites()  # at a hub: each site's endpoints
        described = render(record, items, trust, endpoints, sites=sites)
        view = dns_view
        answers = dns_rows(
            record, endpoints, domain=view.domain, ttl=view.ttl, cluster_ips=view.cluster_ips
        )
        command = f"skyctl dns --domain {view.domain}" + (" --cluster-ips" * view.cluster_ips)
        return service_fragment(described, endpoints, tasks, answers, command, transitions)

    async def service(person: Person, namespace: str, name: str, request: Request) -> str:
        at, when = _when(request)
        user = person.name or None
        if when is not None:
            return await _past_service(person.registry, namespace, name, at, when, trust, user)
        moment = Moment(await person.registry.log.last_sequence())
        fragment = await service_view(person, namespace, name, request)
        return service_page(namespace, name, fragment, user=user, moment=moment)

    async def history(person: Person, namespace: str, name: str, request: Request) -> str:
        from cli.serviceviews import history_rows
        from registry.services.diff import changes

        span = _span(request.query_params.get("from"), request.query_params.get("to"))
        at, when = _when(request)
        registry = person.registry
        items = await registry.history(namespace, name)
        moment = Moment(await registry.log.last_sequence())
        if when is not None:
            past = await registry.at(when, namespace, name)
            moment = Moment(moment.last, at, past.seq, past.moment)
            items = [item for item in items if item.seq <= past.seq]
        if not items:
            raise NotFound(namespace, name)
        diff = None
        if span is not None:
            found = {item.seq: item for item in items}
            for what, seq in zip(("from", "to"), span, strict=True):
                if seq not in found:
                    raise InvalidInput(what, seq, f"no event of service {name} has that sequence")
            diff = (*span, changes(found[span[0]].service, found[span[1]].service))
        rows = history_rows(items, trust)
        user = person.name or None
        return history_page(namespace, name, rows, diff, user=user, moment=moment)

    async def service_audit(person: Person, namespace: str, name: str, request: Request) -> str:
        from cli.auditviews import audit
        from events.subjects import subject_for

        result = await audit(person.registry, trust, subject=subject_for(namespace, name))
        if not result.events:
            raise NotFound(namespace, name)
        return audit_page(result, service=(namespace, name), user=person.name or None)

    async def log_audit(request: Request) -> Response:
        from cli.auditviews import audit

        person = await signed_in(request)
        if isinstance(person, Response):
            return person
        try:
            result = await audit(person.registry, trust)
        except RegistryError as exc:
            return _html(error_page(safe(str(exc)), user=person.name), 403)
        return _html(audit_page(result, user=person.name or None))

    async def sites(request: Request) -> Response:
        return await _sites(request, fragment=False)

    async def sites_live(request: Request) -> Response:
        return await _sites(request, fragment=True)

    async def _sites(request: Request, *, fragment: bool) -> Response:
        person = await signed_in(request)
        if isinstance(person, Response):
            return person
        try:
            shown = sites_fragment(await person.registry.sites())
        except RegistryError as exc:
            if fragment:
                return _html(error_fragment(safe(str(exc))), 403)
            return _html(error_page(safe(str(exc)), user=person.name), 403)
        return _html(shown if fragment else sites_page(shown, user=person.name or None))

    async def login_form(request: Request) -> Response:
        return _html(login_page())

    async def login(request: Request) -> Response:
        # The sign-in form is urlencoded (a creds file is pasted, not uploaded): the
        # standard library reads it, and nothing of it is written anywhere.
        body = (await request.body())[:_FORM_LIMIT].decode("utf-8", "replace")
        form = urllib.parse.parse_qs(body, max_num_fields=10)

        def value(name: str) -> str | None:
            return form.get(name, [""])[0] or None

        try:
            creds = value("creds")
            session = await sessions.sign_in(
                value("user"),
                value("password"),
                value("token"),
                creds if creds is not None and creds.strip() else None,
            )
        except NotAuthenticated as exc:  # the CLI's hint names its flags: not here
            said = f"the server refused these credentials ({safe(exc.detail)})"
            return _html(login_page(f"Not signed in: {' '.join(said.split())}"), 401)
        except RegistryError as exc:
            reason = " ".join(safe(str(exc)).split())  # one line
            return _html(login_page(f"Not signed in: {reason}"), 401)
        response = RedirectResponse("/", 303)
        response.set_cookie(COOKIE, session, httponly=True, samesite="strict", path="/")
        return response

    async def logout(request: Request) -> Response:
        await sessions.sign_out(request.cookies.get(COOKIE, ""))
        response = RedirectResponse("/login", 303)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return response

    async def events(request: Request) -> Response:
        person = await signed_in(request)
        if isinstance(person, Response):
            return person
        # A reconnect names the last event it got; a page's first connection, the mark
        # it was rendered at (``?since=SEQ&moves=N``).
        last = request.headers.get("last-event-id", "").strip()
        reconnect = bool(last)
        since = request.query_params.get("since", "")
        moves = request.query_params.get("moves", "")
        for what, value in (("Last-Event-ID", last), ("since", since), ("moves", moves)):
            if value and not (value.isascii() and value.isdigit()):
                return _html(error_page(f"{what} {value!r} is not a stream sequence"), 400)
        last = last or since
        return StreamingResponse(
            _stream(
                person,
                int(last) if last else None,
                int(moves) if moves and not reconnect else None,
                opening=bool(since) and not reconnect,
            ),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    async def script(request: Request) -> Response:
        return Response(LIVE_JS, headers=HEADERS, media_type="text/javascript")

    async def travel_script(request: Request) -> Response:
        return Response(TRAVEL_JS, headers=HEADERS, media_type="text/javascript")

    async def style(request: Request) -> Response:
        return Response(STYLE, headers=HEADERS, media_type="text/css")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await sessions.close()

    app = Starlette(
        routes=[
            Route("/", services),
            Route("/services/table", table),
            Route("/services/{namespace}/{name}", one_service(service)),
            Route("/services/{namespace}/{name}/live", one_service(service_view, fragment=True)),
            Route("/services/{namespace}/{name}/history", one_service(history)),
            Route("/services/{namespace}/{name}/audit", one_service(service_audit)),
            Route("/audit", log_audit),
            Route("/sites", sites),
            Route("/sites/live", sites_live),
            Route("/login", login_form, methods=["GET"]),
            Route("/login", login, methods=["POST"]),
            Route("/logout", logout, methods=["POST"]),
            Route("/events", events),
            Route("/live.js", script),
            Route("/travel.js", travel_script),
            Route("/ui.css", style),
        ],
        lifespan=lifespan,
    )
    app.state.sessions = sessions
    return app


def _when(request: Request) -> tuple[str | None, When | None]:
    """``?at=``: the past a page is asked for, read as ``get --at`` reads it (a sequence,
    a time, or a while ago); ``(None, None)``: now. ``InvalidInput`` naming a bad one."""
    from registry.services.when import parse_when

    at = request.query_params.get("at", "")
    if not at.strip():
        return None, None
    return at, parse_when(at)


async def _past_services(
    registry: Registry, at: str | None, when: When, namespace: str | None
) -> Listed:
    """The services as they were at ``when`` (``get svc -A --at``), and, where the
    membership history vouches for that moment, who served each then. That history
    missing, or refused the person, is no refusal of the page (``get svc --at`` does not
    read it): the table has no ENDPOINTS, and a line says why."""
    from registry.discovery.served import served_many
    from registry.jetstream.membership import NotRecorded
    from registry.services.when import AtTime

    past = await registry.at(when, namespace)
    records = past.projection.select()
    moment = Moment(await registry.log.last_sequence(), at, past.seq, past.moment)
    then = when.time if isinstance(when, AtTime) else past.moment
    if then is None or not records:
        return records, None, moment, []
    endpoints: dict[ServiceKey, Endpoints] = {}
    caveats: dict[str, None] = {}  # each once, in order
    try:
        for served in await served_many(registry.log, records, then, registry.on_skipped):
            caveats.update(dict.fromkeys(served.caveats))
            if not served.caveats:  # else not known: the table says <unknown>
                endpoints[served.record.key] = served.endpoints
    except (NotRecorded, PermissionDenied) as exc:
        return records, None, moment, [f"endpoints: error: {safe(str(exc))}"]
    notes = [safe(f"endpoints: warning: {caveat}") for caveat in caveats]
    return records, endpoints or None, moment, notes


async def _past_service(
    registry: Registry,
    namespace: str,
    name: str,
    at: str | None,
    when: When,
    trust: Trust | None,
    user: str | None,
) -> str:
    """A service's page as it was at ``when`` (a service deleted since included): its
    definition then, and who served it then from the membership history, as ``get
    endpoints NAME --at`` shows them (what that history cannot vouch for, that it
    records nothing or that the person may not read it, said as that command says it)."""
    from cli.serviceviews import place, render
    from registry.jetstream.membership import NotRecorded

    past = await registry.at(when, namespace, name)
    record = past.projection.services.get((namespace, name))
    if record is None:
        raise NotFound(namespace, name)
    items = [item for item in await registry.history(namespace, name) if item.seq <= past.seq]
    endpoints: Endpoints | None = None
    try:
        served = await registry.served_at(namespace, name, when)
        endpoints = served.endpoints
        notes = [safe(f"warning: {caveat}") for caveat in served.caveats]
    except (NotRecorded, PermissionDenied) as exc:  # the definition is still shown
        notes = [f"error: {safe(str(exc))}"]
    moment = Moment(await registry.log.last_sequence(), at, past.seq, past.moment)
    place(record, items)
    described = render(record, items, trust, endpoints, now=past.moment)
    fragment = past_service_fragment(described, endpoints, notes)
    return service_page(namespace, name, fragment, user=user, moment=moment)


MOST_SERVICES = 100  # ?service= values one table request may name


def _key(value: str) -> tuple[str, str]:
    """A ``?service=NAMESPACE/NAME`` value, each part checked as the CLI checks a name."""
    namespace, slash, name = value.partition("/")
    if not slash:
        raise InvalidInput("service", value, "give NAMESPACE/NAME")
    return parse_name(namespace, "namespace"), parse_name(name)


async def _some(
    registry: Registry, keys: list[tuple[str, str]], namespace: str | None
) -> list[ServiceEndpoints]:
    """The named services that are live (in ``namespace``, if given), with their
    endpoints, ordered as a listing is: what the live page swaps in for those rows."""
    from registry.discovery.follower import ServiceEndpoints

    found = []
    for each, name in sorted(set(keys)):
        if namespace is not None and each != namespace:
            continue
        try:
            record = await registry.get(each, name)
        except NotFound:
            continue
        found.append(ServiceEndpoints(record, await registry.endpoints(each, name, record=record)))
    return found


def _span(start: str | None, end: str | None) -> tuple[int, int] | None:
    """``?from=SEQ&to=SEQ``: both or neither, each a stream sequence."""
    if not start and not end:
        return None
    for what, value in (("from", start), ("to", end)):
        if not value or not (value.isascii() and value.isdigit()):
            raise InvalidInput(what, value or "", "give both from and to, each a sequence")
    assert start is not None and end is not None
    return int(start), int(end)


async def _stream(
    person: Person, last: int | None, moves: int | None, *, opening: bool = False
) -> AsyncIterator[str]:
    """The changes after ``last`` (read from the log up to where the hub stood when this
    browser joined), then the hub's, each once, in order. ``opening`` (a page's first
    connection, not a reconnect, carrying its mark): first the endpoint moves after the
    page's mark ``moves``, or ``resync`` if they cannot be told."""
    from registry.services.when import AtSequence

    try:
        queue, position, missed = await person.hub.join(moves)
    except RegistryError as exc:
        yield _failed(exc)
        return
    try:
        yield "retry: 1000\n\n"
        if opening and missed is None:
            yield "event: resync\ndata: {}\n\n"
        for moved in missed if opening and missed is not None else ():
            yield _moved(moved)
        if last is not None and last < position:
            async for record in person.registry.events(since=AtSequence(last + 1)):
                if record.seq > position:
                    break
                yield _event(record)
        while True:
            try:
                # (not wait_for, which on Python 3.11 can swallow the cancel of a
                # stream whose browser left as an item arrived: see pyproject)
                async with asyncio.timeout(KEEPALIVE):
                    item = await queue.get()
            except TimeoutError:
                yield ": keepalive\n\n"
                continue
            if isinstance(item, EndpointsMoved):
                yield _moved(item)
                continue
            if isinstance(item, BaseException):
                yield _failed(item)
                return
            yield _event(item)
    except RegistryError as exc:  # the replay refused: the browser retries
        yield _failed(exc)
    finally:
        person.hub.leave(queue)


async def _paced(parts: Iterator[str]) -> AsyncIterator[str]:
    """A page rendered a part at a time, each sent as it is ready, with the event loop
    free between parts: a page of many services neither waits to be whole before the
    browser can read it, nor holds up every other request (the live feeds) meanwhile."""
    for part in parts:
        yield part
        await asyncio.sleep(0)


def _moved(moved: EndpointsMoved) -> str:
    data = {"namespace": moved.namespace, "name": moved.name, "endpoints": moved.status}
    return f"event: endpoints\ndata: {json.dumps(data)}\n\n"


def _failed(exc: BaseException) -> str:
    """The feed ended on the server's refusal (or a lost connection), as one line."""
    return f"event: failed\ndata: {json.dumps(safe(str(exc)))}\n\n"
