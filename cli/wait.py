"""``skyctl wait service``: block until a service is deleted, has enough ready endpoints,
or a field of it (as ``get -o json`` prints it) has a value, as ``kubectl wait``.

The wait follows the service (``Registry.follow_endpoints``, with its status reports
beside it, as ``get -w`` does): a change is seen when it is appended, never polled for.
"""

import asyncio
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from cli.connection import Connection, connection_options
from cli.errors import EXIT_REFUSED, fail
from cli.lifetime import run_command
from cli.options import NamespaceOpt
from cli.parse import parse_name
from cli.streams import interleaved
from cli.terminal import safe
from cli.verbs import register, verb_app
from registry.errors import InvalidInput, NotFound, ServiceError

if TYPE_CHECKING:
    from cli.template import Path
    from registry.discovery.endpoints import Endpoints
    from registry.services.projection import ServiceRecord

__all__ = ["Condition", "parse_condition", "parse_timeout", "wait_app"]

wait_app = verb_app("Wait for a condition on a resource.")

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_FOR_HELP = "delete, endpoints>=N (N ready endpoints or more), or jsonpath='{.path}'=VALUE"


@dataclass(frozen=True)
class Condition:
    """One ``--for``: as written, and what it checks."""

    text: str
    kind: Literal["delete", "endpoints", "jsonpath"]
    count: int = 0
    path: "Path | None" = None
    value: str = ""

    def met(self, record: "ServiceRecord | None", endpoints: "Endpoints | None") -> str | None:
        """What happened, if the condition holds for the service as it is now (None: the
        service is live and the condition does not hold yet)."""
        if self.kind == "delete":
            return None if record is not None else "deleted"
        if record is None:
            return None
        if self.kind == "endpoints":
            ready = endpoints.ready if endpoints is not None else 0
            if ready >= self.count:
                return f"condition met: {ready} ready endpoint{'s' if ready != 1 else ''}"
            return None
        if self._found(record, endpoints) == [self.value]:
            return f"condition met: {safe(self.text)}"
        return None

    def now(self, record: "ServiceRecord | None", endpoints: "Endpoints | None") -> str:
        """What holds instead, for the message at the timeout."""
        if record is None:
            return "it is not live"
        if self.kind == "delete":
            return "it is still live"
        if self.kind == "endpoints":
            ready = endpoints.ready if endpoints is not None else 0
            return f"{ready} ready endpoint{'s' if ready != 1 else ''}"
        found = self._found(record, endpoints)
        shown = ", ".join(found) if found else "nothing"
        return f"the path gives {safe(shown)}"

    def _found(self, record: "ServiceRecord", endpoints: "Endpoints | None") -> list[str]:
        from cli.render import endpoints_status, service_object
        from cli.template import text_of

        assert self.path is not None
        obj: dict[str, Any] = service_object(record)
        if endpoints is not None:
            obj["status"]["endpoints"] = endpoints_status(endpoints)
        return [text_of(value) for value in self.path.find(obj)]


def parse_condition(text: str) -> Condition:
    """``delete``, ``endpoints>=N`` or ``jsonpath='{.path}'=VALUE``; InvalidInput else."""
    if text == "delete":
        return Condition(text, "delete")
    if text.startswith("endpoints>="):
        number = text.removeprefix("endpoints>=")
        if not (number.isascii() and number.isdigit()) or len(number) > 6:
            raise InvalidInput("--for", text, "endpoints>=N takes a whole number N")
        return Condition(text, "endpoints", count=int(number))
    if text.startswith("jsonpath="):
        from cli.template import compile_path

        rest = text.removeprefix("jsonpath=")
        end = rest.rfind("}=")
        if not rest.startswith("{") or end < 0:
            raise InvalidInput("--for", text, "give jsonpath='{.path}'=VALUE")
        return Condition(text, "jsonpath", path=compile_path(rest[1:end]), value=rest[end + 2 :])
    raise InvalidInput("--for", text, f"give {_FOR_HELP}")


def parse_timeout(text: str) -> float:
    """``30s``, ``500ms``, ``2m``, ``1h`` or seconds (``0``: check once)."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise InvalidInput("--timeout", text, "give a duration: 30s, 500ms, 2m, 1h")
    seconds = float(match[1]) * _UNITS[match[2]]
    if seconds > 7 * 24 * 3600:
        raise InvalidInput("--timeout", text, "at most a week (168h)")
    return seconds


@connection_options
def wait_service(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Service name.", show_default=False)],
    namespace: NamespaceOpt = "default",
    condition: Annotated[
        str,
        typer.Option(
            "--for", metavar="CONDITION", help=f"What to wait for: {_FOR_HELP}.", show_default=False
        ),
    ] = "",
    timeout: Annotated[
        str,
        typer.Option(
            "--timeout",
            metavar="DURATION",
            help="How long to wait: 30s, 500ms, 2m (0: check once).",
        ),
    ] = "30s",
    *,
    conn: Connection,
) -> None:
    """Wait until the service is deleted, has N ready endpoints or more, or a field of it
    (as get -o json prints it, status.endpoints included) has a value. Returns as soon as
    the condition holds (at once if it holds already), printing what happened; exit 1 at
    the timeout. A service that is not live is waited for only with --for=delete.

    Example:  skyctl wait service web --for=endpoints>=2 --timeout 1m

              skyctl wait service web --for=jsonpath='{.spec.type}'=NodePort
    """
    namespace, name = parse_name(namespace, "namespace"), parse_name(name)
    if not condition:
        raise InvalidInput("--for", "", f"say what to wait for: {_FOR_HELP}")
    wanted = parse_condition(condition)
    seconds = parse_timeout(timeout)
    outcome = run_command(_wait(conn, namespace, name, wanted, seconds))
    if outcome.startswith("timeout:"):
        fail(
            f"timed out after {timeout.strip()} waiting for service/{name} "
            f"({safe(condition)}): {outcome.removeprefix('timeout:')}",
            EXIT_REFUSED,
        )
    print(f"service/{name} {outcome}")


async def _wait(
    conn: Connection, namespace: str, name: str, wanted: Condition, seconds: float
) -> str:
    """What happened, or ``timeout:`` and what held instead."""
    from registry.discovery.follower import Discovered, EndpointsChanged

    record: ServiceRecord | None = None
    endpoints: Endpoints | None = None
    async with (
        await conn.open(keep_reconnecting=True) as registry,
        registry.follow_statuses(namespace, name) as reports,
        registry.follow_endpoints(namespace, name) as follower,
    ):
        started = False
        try:
            async with asyncio.timeout(seconds or None), interleaved(follower, reports) as items:
                async for item in items:
                    if isinstance(item, Discovered):
                        found = [s for s in item.services if s.key == (namespace, name)]
                        record = found[0].record if found else None
                        endpoints = found[0].endpoints if found else None
                        if record is None and wanted.kind != "delete":
                            raise NotFound(namespace, name)
                        started = True
                    elif not started:
                        continue  # a status report before the first read: kept by the feed
                    elif isinstance(item, EndpointsChanged):
                        deleted = item.kind == "DELETED"
                        record = None if deleted else item.service.record
                        endpoints = None if deleted else item.service.endpoints
                        if deleted and wanted.kind != "delete":
                            raise ServiceError(
                                f'service "{name}" in namespace "{namespace}" was deleted '
                                f"while waiting for {wanted.text}",
                                namespace,
                                name,
                            )
                    shown = reports.attach(record) if record is not None else None
                    happened = wanted.met(shown, endpoints)
                    if happened is not None:
                        return happened
                    if seconds == 0:
                        break
        except TimeoutError:
            pass
    shown = reports.attach(record) if record is not None else None
    return "timeout:" + wanted.now(shown, endpoints)


register(wait_app, wait_service, short_help="Wait for a service's delete, endpoints or field.")
