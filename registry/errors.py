"""Everything the registry can refuse, as one tree, each with a message a user can act on.

    RegistryError
    ├── InvalidInput            a value the user gave is not acceptable (nothing written)
    ├── ServiceError            the registry's state forbids the request
    │   ├── AlreadyExists       create of a live service
    │   ├── NotFound            get or delete of a service that is not live
    │   ├── Stale               changed since the revision the writer read (apply, edit)
    │   ├── Conflict            the service kept changing under us; retry
    │   ├── UnreadableHistory   its last event is unreadable here: no safe decision
    │   ├── AddressTaken        the address asked for is held by another service
    │   ├── RangeExhausted      no address of that kind is free in its range
    │   └── NoEndpoints         nothing to pick: no ready task, or not resolved yet
    └── ServerError             the NATS side could not do what was asked
        ├── Unreachable         no server at the URL (or it has no JetStream)
        ├── NotAuthenticated    the server refused the credentials
        ├── PermissionDenied    the server refused this user the operation
        │   └── InboxRefused    ...its replies under the inbox prefix used: nothing can answer
        ├── StreamMisconfigured the log stream could lose history; refused
        ├── StreamOutdated      the log stream predates addresses: skyctl init upgrades it
        ├── CheckpointConflict  another process moved a durable subscription on
        └── WriteNotConfirmed   no ack after retries: the write may or may not be stored

The CLI maps each branch to an exit code in one place (``cli/errors.py``).
"""

from __future__ import annotations

__all__ = [
    "AddressTaken",
    "AlreadyExists",
    "CheckpointConflict",
    "Conflict",
    "InboxRefused",
    "InvalidInput",
    "NoEndpoints",
    "NotARegistry",
    "NotAuthenticated",
    "NotFound",
    "PermissionDenied",
    "QuotaExceeded",
    "RangeExhausted",
    "ReadSlotsBusy",
    "RegistryError",
    "ServerError",
    "ServiceError",
    "SiteReadOnly",
    "Stale",
    "StreamMisconfigured",
    "StreamOutdated",
    "TaskError",
    "TaskNotAnswering",
    "TaskTaken",
    "Unreachable",
    "UnreadableHistory",
    "WriteNotConfirmed",
    "stale_state",
]


class RegistryError(Exception):
    """Root of every error the registry raises on purpose."""


class InvalidInput(RegistryError):
    def __init__(self, what: str, value: object, reason: str) -> None:
        shown = value if isinstance(value, str) else repr(value)
        super().__init__(f'invalid {what} "{shown}": {reason}')
        self.what = what
        self.value = value
        self.reason = reason


class ServiceError(RegistryError):
    def __init__(self, message: str, namespace: str, name: str) -> None:
        super().__init__(message)
        self.namespace = namespace
        self.name = name


class AlreadyExists(ServiceError):
    def __init__(self, namespace: str, name: str) -> None:
        super().__init__(
            f'service "{name}" already exists in namespace "{namespace}"', namespace, name
        )


class NotFound(ServiceError):
    def __init__(self, namespace: str, name: str) -> None:
        super().__init__(f'service "{name}" not found in namespace "{namespace}"', namespace, name)


class Stale(ServiceError):
    """Not at the revision the writer read: changed since, deleted since, or (``ever``
    false) never created, so no revision of it was ever read."""

    def __init__(
        self, namespace: str, name: str, expected: int, actual: int | None, *, ever: bool = True
    ) -> None:
        if actual is None and not ever:
            message = (
                f'service "{name}" in namespace "{namespace}" does not exist: it never had '
                f"revision {expected} (leave out metadata.resourceVersion to create it)"
            )
        else:
            message = (
                f'service "{name}" in namespace "{namespace}" changed since revision '
                f"{expected} ({stale_state(actual)}); get it again and re-apply"
            )
        super().__init__(message, namespace, name)
        self.expected = expected
        self.actual = actual
        self.ever = ever


def stale_state(actual: int | None) -> str:
    """Where a service that had a revision stands now: at another one, or deleted."""
    return f"it is at {actual}" if actual is not None else "it was deleted"


class Conflict(ServiceError):
    def __init__(self, namespace: str, name: str) -> None:
        super().__init__(
            f'service "{name}" in namespace "{namespace}" kept changing while we wrote; try again',
            namespace,
            name,
        )


class UnreadableHistory(ServiceError):
    def __init__(self, namespace: str, name: str, seq: int, reason: str) -> None:
        super().__init__(
            f'service "{name}" in namespace "{namespace}": its last event (seq {seq}) cannot be '
            f"read by this version ({reason}); refusing to write over it (upgrade skyctl, or "
            "delete the service with --force if the event is garbage)",
            namespace,
            name,
        )
        self.seq = seq
        self.reason = reason


class AddressTaken(ServiceError):
    def __init__(self, namespace: str, name: str, what: str, address: str, holder: str) -> None:
        super().__init__(
            f'cannot give service "{name}" in namespace "{namespace}" {what} {address}: '
            f"it is held by service {holder}",
            namespace,
            name,
        )
        self.what = what
        self.address = address
        self.holder = holder


class RangeExhausted(ServiceError):
    def __init__(self, namespace: str, name: str, what: str, where: str) -> None:
        super().__init__(
            f'no free {what} in {where} for service "{name}" in namespace "{namespace}" '
            "(delete services that hold one, or widen the range: skyctl init --help)",
            namespace,
            name,
        )
        self.what = what
        self.where = where


class QuotaExceeded(ServiceError):
    """A write would take a namespace past its quota (``skyctl create quota``)."""

    def __init__(
        self, namespace: str, name: str, quota: str, resource: str, used: int, hard: int
    ) -> None:
        super().__init__(
            f'quota "{quota}" exceeded in namespace {namespace}: {resource} {used}/{hard} '
            f'(service "{name}" needs more; delete services, or an admin raises it: '
            "skyctl create quota --help)",
            namespace,
            name,
        )
        self.quota = quota
        self.resource = resource
        self.used = used
        self.hard = hard


class NoEndpoints(ServiceError):
    def __init__(self, namespace: str, name: str, reason: str) -> None:
        super().__init__(
            f'service "{name}" in namespace "{namespace}" has no endpoint to pick: {reason}',
            namespace,
            name,
        )
        self.reason = reason


class SiteReadOnly(RegistryError):
    """A service change asked of a site's server: a site's service log is a mirror of the
    hub's, which only the hub writes. Refused, never queued, so nothing is silently lost
    and nobody believes a change made that the hub never saw."""

    def __init__(self, site: str, hub_domain: str, hub_url: str) -> None:
        where = f" ({hub_url})" if hub_url else ""
        super().__init__(
            f"this server is site {site}: its service log is a read-only mirror of the "
            f"hub's (JetStream domain {hub_domain}); make service changes at the hub"
            f"{where}, e.g. with --server {hub_url or '<hub URL>'}"
        )
        self.site = site


class TaskError(RegistryError):
    """A live task refused what was asked of it."""

    def __init__(self, message: str, namespace: str, name: str) -> None:
        super().__init__(message)
        self.namespace = namespace
        self.name = name


class TaskTaken(TaskError):
    """Another announcer keeps the name live: two would flap, each renewal undoing the
    other's."""

    def __init__(self, namespace: str, name: str, detail: str, ttl: int) -> None:
        super().__init__(
            f"task {name} in namespace {namespace} is already announced ({detail}); stop "
            f"that announcer (the server forgets a killed one {ttl}s after its last "
            "heartbeat), choose another name, or take it over with --replace",
            namespace,
            name,
        )


class TaskNotAnswering(TaskError):
    """No announcer answered a readiness request."""

    def __init__(self, namespace: str, name: str) -> None:
        super().__init__(
            f"no announcer of task {name} in namespace {namespace} answers (is it live? "
            f"skyctl get task {name} -n {namespace}; an announcer from before readiness "
            "requests, or one the server does not let receive them, cannot answer)",
            namespace,
            name,
        )


class ServerError(RegistryError):
    pass


class Unreachable(ServerError):
    def __init__(self, url: str, reason: str) -> None:
        hint = ""
        if "refused" in reason:
            hint = " (start one with `skyctl server`, or point --server / NATS_URL at yours)"
        super().__init__(f"cannot reach NATS at {url}: {reason}{hint}")
        self.url = url
        self.reason = reason


class NotAuthenticated(ServerError):
    def __init__(self, url: str, detail: str) -> None:
        super().__init__(
            f"NATS at {url} refused the credentials ({detail}): check --user/--password, "
            "--token or --creds (or NATS_USER, NATS_PASSWORD, NATS_TOKEN, NATS_CREDS)"
        )
        self.url = url
        self.detail = detail


class NotARegistry(ServerError):
    """A read pointed at a server without the registry's stream: reads never create it."""

    def __init__(self, url: str, stream: str) -> None:
        super().__init__(
            f"no SkyFlow registry at {url}: it has no stream {stream} (an admin creates it "
            "with skyctl init; or point --server / NATS_URL at the registry)"
        )
        self.url = url
        self.stream = stream


class PermissionDenied(ServerError):
    def __init__(self, operation: str, detail: str) -> None:
        super().__init__(f"permission denied: {operation} ({detail})")
        self.operation = operation
        self.detail = detail


class InboxRefused(PermissionDenied):
    """The server refuses this user replies under the inbox prefix it connected with, so
    no request can ever be answered (``registry.jetstream.open_log`` retries once with the
    user's own prefix, ``_INBOX_<user>``, when none was chosen)."""


class ReadSlotsBusy(ServerError):
    """Every consumer name the user may use on a stream is taken by its other reads."""

    def __init__(self, user: str | None, stream: str, slots: int) -> None:
        who = f"user {user!r}" if user else "this user"
        super().__init__(
            f"all {slots} reads {who} may keep open on {stream} are in use (by its other "
            "watches, Resolvers or commands; the server removes one a killed read left behind "
            "once it has been idle, in 10 s for a command, 5 minutes at most): "
            "stop one, or give this program a user of its own (docs/security.md)"
            if slots
            else f"{who} may not read {stream} (no consumer name of its own there)"
        )
        self.user = user
        self.stream = stream
        self.slots = slots


class StreamMisconfigured(ServerError):
    def __init__(self, stream: str, problems: list[str]) -> None:
        super().__init__(
            f"refusing stream {stream}: it could lose, hide, move or delay events: "
            + "; ".join(problems)
        )
        self.stream = stream
        self.problems = problems


class StreamOutdated(ServerError):
    def __init__(self, stream: str, lacking: list[str]) -> None:
        super().__init__(
            f"stream {stream} was made by an older skyctl and lacks {' and '.join(lacking)}: "
            "an admin runs `skyctl init` once to upgrade it (nothing in it changes)"
        )
        self.stream = stream
        self.lacking = lacking


class CheckpointConflict(ServerError):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"subscription {name!r} moved on in another process; run one consumer per "
            "subscription name"
        )
        self.name = name


class WriteNotConfirmed(ServerError):
    def __init__(self, event_id: str, reason: str) -> None:
        super().__init__(
            f"event {event_id} was not confirmed by the server ({reason}); it may or may not "
            "be stored: check with `skyctl get` before retrying"
        )
        self.event_id = event_id
        self.reason = reason
