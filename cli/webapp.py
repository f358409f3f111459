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
    Filters,
    error_page,
    history_page,
    login_page,
    parse_filters,
    service_page,
    services_page_parts,
    services_table,
)
from registry.errors import InvalidInput, NotFound, RegistryError

if TYPE_CHECKING:
    from registry.client import Registry
    from registry.discovery.follower import ServiceEndpoints
    from registry.services.feed import LogRecord

__all__ = ["COOKIE", "HEADERS", "EndpointsMoved", "Hub", "Sessions", "make_app"]

COOKIE = "skyflow_session"
_FORM_LIMIT = 64 * 1024  # a sign-in form is a few hundred bytes
SESSION_LIFETIME_S = 12 * 3600.0  # a working day: then sign in again
KEEPALIVE = 15.0  # seconds between SSE comments, so a gone browser is noticed
RECENT_MOVES = 10_000  # endpoint moves a hub keeps for pages whose stream is opening


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
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await task


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

    async def sign_in(self, user: str | None, password: str | None, token: str | None) -> str:
        """A new session's id, over the person's connection (opened now if it is their
        first); the server's refusal (``RegistryError``) if it refuses them."""
        if user is None and token is None:
            raise InvalidInput("user", "", "sign in with a user and password, or a token")
        # Nothing of the UI's own identity carries over: only its server and TLS trust.
        unset: dict[str, Any] = dict.fromkeys(("creds", "nkey", "inbox_prefix"))
        conn = replace(self.base, user=user, password=password, token=token, **unset)
        async with self._lock:
            person = self.people.get(conn.reach())
            if person is None:
                registry = await conn.open(keep_reconnecting=True)
                person = Person(user or "token", registry, Hub(registry))
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


def make_app(base: Connection, *, anonymous: bool = False) -> Starlette:
    """The UI's ASGI app, reading as whoever signs in on ``base``'s server (or, with
    ``anonymous``, over ``base`` itself)."""
    sessions = Sessions(base, anonymous=anonymous)

    async def signed_in(request: Request) -> Person | Response:
        person = await sessions.person(request)
        if person is not None:
            return person
        if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
            return RedirectResponse("/login", 303)
        return _html(login_page("Sign in first."), 401)

    async def read(
        request: Request, *, page: bool = False
    ) -> tuple[Person, list[ServiceEndpoints], Filters, tuple[int, int | None] | None] | Response:
        """The services the query asks for, as the person may read them (``?service=
        NAMESPACE/NAME``, repeated: only those, each read as ``get svc NAME`` reads it);
        for a ``page``, the hub's mark taken before reading (None if its reader cannot
        start); else the page saying why not (a bad filter: 400; the server's refusal, as
        the CLI words it)."""
        person = await signed_in(request)
        if isinstance(person, Response):
            return person
        try:
            filters = parse_filters(request.query_params)
            only = [_key(each) for each in request.query_params.getlist("service")]
        except InvalidInput as exc:
            return _html(error_page(str(exc), user=person.name), 400)
        mark = None
        if page:
            with contextlib.suppress(RegistryError):  # the page says why, when it reads
                await person.hub.start()
                mark = person.hub.mark()
        try:
            if only:
                found = await _some(person.registry, only, filters.namespace)
            else:
                found = await person.registry.list_endpoints(filters.namespace)
        except RegistryError as exc:
            return _html(error_page(safe(str(exc)), user=person.name), 403)
        return person, found, filters, mark

    async def services(request: Request) -> Response:
        got = await read(request, page=True)
        if isinstance(got, Response):
            return got
        person, found, filters, mark = got
        parts = services_page_parts(found, filters, user=person.name or None, mark=mark)
        return StreamingResponse(_paced(parts), headers=HEADERS, media_type="text/html")

    async def table(request: Request) -> Response:
        got = await read(request)
        if isinstance(got, Response):
            return got
        _, found, filters, _ = got
        signing = request.query_params.get("signing") == "1"  # the page's table's
        return _html(services_table(found, filters, signing=signing))

    def one_service(
        show: Callable[[Person, str, str, Request], Awaitable[str]],
    ) -> Callable[[Request], Awaitable[Response]]:
        """A page of the service the path names, each part checked as the CLI checks a
        name before anything is asked of the server; a refusal as the CLI words it: a bad
        value 400, a service that is not there 404, what the person may not read 403."""

        async def page(request: Request) -> Response:
            person = await signed_in(request)
            if isinstance(person, Response):
                return person
            try:
                namespace = parse_name(request.path_params["namespace"], "namespace")
                name = parse_name(request.path_params["name"])
                return _html(await show(person, namespace, name, request))
            except InvalidInput as exc:
                return _html(error_page(str(exc), user=person.name), 400)
            except RegistryError as exc:
                status = 404 if isinstance(exc, NotFound) else 403
                return _html(error_page(safe(str(exc)), user=person.name), status)

        return page

    async def service(person: Person, namespace: str, name: str, request: Request) -> str:
        from cli.serviceviews import place, render

        record = await person.registry.get(namespace, name)
        items = await person.registry.history(namespace, name)
        endpoints = await person.registry.endpoints(namespace, name, record=record)
        place(record, items)
        described = render(record, items, None, endpoints)
        return service_page(namespace, name, described, endpoints, user=person.name or None)

    async def history(person: Person, namespace: str, name: str, request: Request) -> str:
        from cli.serviceviews import history_rows
        from registry.services.diff import changes

        span = _span(request.query_params.get("from"), request.query_params.get("to"))
        items = await person.registry.history(namespace, name)
        if not items:
            raise NotFound(namespace, name)
        diff = None
        if span is not None:
            at = {item.seq: item for item in items}
            for what, seq in zip(("from", "to"), span, strict=True):
                if seq not in at:
                    raise InvalidInput(what, seq, f"no event of service {name} has that sequence")
            diff = (*span, changes(at[span[0]].service, at[span[1]].service))
        rows = history_rows(items, None)
        return history_page(namespace, name, rows, diff, user=person.name or None)

    async def login_form(request: Request) -> Response:
        return _html(login_page())

    async def login(request: Request) -> Response:
        # The sign-in form is urlencoded (no files): the standard library reads it.
        body = (await request.body())[:_FORM_LIMIT].decode("utf-8", "replace")
        form = urllib.parse.parse_qs(body, max_num_fields=10)

        def value(name: str) -> str | None:
            return form.get(name, [""])[0] or None

        try:
            session = await sessions.sign_in(value("user"), value("password"), value("token"))
        except RegistryError as exc:
            return _html(login_page(f"Not signed in: {safe(str(exc))}"), 401)
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
            Route("/services/{namespace}/{name}/history", one_service(history)),
            Route("/login", login_form, methods=["GET"]),
            Route("/login", login, methods=["POST"]),
            Route("/logout", logout, methods=["POST"]),
            Route("/events", events),
            Route("/live.js", script),
            Route("/ui.css", style),
        ],
        lifespan=lifespan,
    )
    app.state.sessions = sessions
    return app


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

    if len(keys) > MOST_SERVICES:
        raise InvalidInput("service", str(len(keys)), f"name at most {MOST_SERVICES} services")
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
                item = await asyncio.wait_for(queue.get(), KEEPALIVE)
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
