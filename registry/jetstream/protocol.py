"""JetStream's vocabulary, with no client library: header names, error codes, the API's
errors as the registry's, and the check that refuses a stream which could lose events
(invariant 6): every setting of nats-server 2.15's stream configuration that could lose,
hide, move or delay an event is named here with what it would do and how to fix it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from events.sites import mirror_of
from events.stream import StreamSpec
from registry.errors import PermissionDenied, ServerError

__all__ = [
    "BATCH_COMMIT",
    "BATCH_DUPLICATE_ID",
    "BATCH_ID",
    "BATCH_INCOMPLETE_TEXT",
    "BATCH_SEQUENCE",
    "DEFAULT_URL",
    "EXPECTED_LAST_SUBJECT_SEQUENCE",
    "MESSAGE_TOO_LARGE",
    "OWN_WRITE_IN_FLIGHT",
    "STREAM_NOT_FOUND",
    "WRONG_LAST_SEQUENCE",
    "ApiError",
    "api_error",
    "outdated",
    "stream_problems",
]

DEFAULT_URL = "nats://127.0.0.1:4222"

EXPECTED_LAST_SUBJECT_SEQUENCE = "Nats-Expected-Last-Subject-Sequence"
# Atomic batch publishes (ADR-50, nats-server 2.12+): every message names its batch and
# its place in it; the last one commits, and only its reply is a publish ack.
BATCH_ID = "Nats-Batch-Id"
BATCH_SEQUENCE = "Nats-Batch-Sequence"
BATCH_COMMIT = "Nats-Batch-Commit"
# In the server's answer to a commit whose batch lost a message (JetStream error 10176).
BATCH_INCOMPLETE_TEXT = b"batch is incomplete"
# R1 streams answer a failed expectation with 10071, replicated ones with 10164.
WRONG_LAST_SEQUENCE = frozenset({10071, 10164})
# A replicated stream's leader answers a retry (of one message or of a batch) whose first
# attempt it is still proposing with 10158 "duplicate message id is in process": not
# stored yet, but it may be, so the retry goes on until the id is stored (a duplicate ack,
# or a batch's ids found ours) or the time is up.
OWN_WRITE_IN_FLIGHT = 10158
# A retried atomic batch whose ids are already stored (its first attempt committed and
# the ack was lost, e.g. across a leader change) is refused with 10201 "atomic publish
# batch contains duplicate message id" rather than answered with a duplicate ack.
BATCH_DUPLICATE_ID = 10201
STREAM_NOT_FOUND = 10059
MESSAGE_TOO_LARGE = 10054  # larger than the stream's max_msg_size: refused, not stored
_REPLICAS_NEED_CLUSTER = 10074


class ApiError(ServerError):
    """The JetStream API refused a request; ``err_code`` says which refusal it was."""

    def __init__(
        self, operation: str, code: int | None, err_code: int | None, description: str
    ) -> None:
        super().__init__(f"{operation} failed: {description} (code {err_code})")
        self.operation = operation
        self.code = code
        self.err_code = err_code
        self.description = description


def api_error(error: Mapping[str, Any], operation: str) -> ServerError:
    """The registry's error for the ``error`` object of a JetStream API answer."""
    code, err_code = error.get("code"), error.get("err_code")
    description = str(error.get("description") or "unknown error")
    if code == 403 or "permission" in description.lower():
        return PermissionDenied(operation, description)
    if err_code == _REPLICAS_NEED_CLUSTER:
        description += ": more than 1 replica needs a JetStream cluster"
    return ApiError(
        operation,
        code if isinstance(code, int) else None,
        err_code if isinstance(err_code, int) else None,
        description,
    )


# For each setting the stream check looks at: what a wrong value would do to the log, and
# how an operator puts it right. Said in one line with the setting's name and value.
_CONSEQUENCES: dict[str, tuple[str, str]] = {
    "storage": (
        "acknowledged events are lost when the server restarts",
        "JetStream cannot change a stream's storage: recreate it with file storage",
    ),
    "retention": (
        "events are deleted once consumers have seen them",
        "recreate it with limits retention",
    ),
    "deny_delete": ("anyone allowed the API can delete events", "nats stream edit --deny-delete"),
    "deny_purge": ("anyone allowed the API can purge the log", "nats stream edit --deny-purge"),
    "allow_rollup_hdrs": (
        "one message with a Nats-Rollup header erases a service's history",
        "recreate it without roll-ups",
    ),
    "max_msgs": ("the oldest events are dropped", "set it to -1 (unlimited)"),
    "max_bytes": ("the oldest events are dropped", "set it to -1 (unlimited)"),
    "max_age": ("events expire", "set it to 0 (forever)"),
    "max_msgs_per_subject": ("older events of a service are dropped", "set it to -1"),
    "sealed": ("nothing more can be written", "use a new stream"),
    "no_ack": ("writes are not confirmed", "turn no_ack off"),
    "allow_msg_ttl": (
        "a writer's Nats-TTL header makes an event expire",
        "it cannot be turned off: recreate the stream",
    ),
    "allow_msg_schedules": (
        "a scheduled message appends events later, around the registry's checks",
        "recreate the stream without message schedules",
    ),
    "allow_msg_counter": (
        "publishes are counter increments, not events",
        "recreate the stream without counters",
    ),
    "allow_atomic": (
        "a service and the addresses it holds cannot be written as one atomic batch",
        "an admin runs skyctl init to upgrade the stream",
    ),
}

# What ``skyctl init`` adds to a stream made before addresses existed: no danger to
# events (``stream_problems`` skips them), but refused until added (``outdated``).
UPGRADED_BY_INIT = frozenset({"allow_atomic", "subjects"})


def stream_problems(
    spec: StreamSpec, config: Mapping[str, Any], *, provisioning: bool = False
) -> list[str]:
    """Every setting of a stream configuration (as the server's JSON has it) that could
    lose, hide, move or delay events, each with what it would do and how to fix it."""
    problems: list[str] = []

    def problem(setting: str, why: str, fix: str) -> None:
        problems.append(f"{setting}: {why} ({fix})")

    for key, want in spec.required.items():
        if key in UPGRADED_BY_INIT:
            continue  # not a danger to events: ``outdated`` reports it
        have = _normal(key, config.get(key))
        if have != want:
            why, fix = _CONSEQUENCES[key]
            problem(f"{key} is {_show(key, have)}, must be {_show(key, want)}", why, fix)
    if (config.get("persist_mode") or "default") != "default":
        problem(
            f"persist_mode is {config.get('persist_mode')}",
            "acknowledged writes can be lost in a crash",
            "set persist_mode to default",
        )
    if config.get("subject_transform"):
        problem(
            "a subject_transform is set",
            "events are stored under other subjects than the one per service",
            "remove it (nats stream edit)",
        )
    if config.get("republish"):
        problem(
            "republish is set",
            "every event is copied to other subjects, outside the log's permissions",
            "remove it (nats stream edit)",
        )
    # (A site's mirror of the hub's log is the one exception: ``events.sites``. It holds
    # the hub's events under the hub's sequences, and the site refuses writes.)
    if (config.get("mirror") or config.get("sources")) and mirror_of(config) is None:
        problem(
            "it mirrors or sources other streams",
            "events arrive from elsewhere, around the registry's checks",
            "use a stream of its own",
        )
    if not config.get("allow_direct"):
        problem("allow_direct is off", "reads need direct gets", "nats stream edit --allow-direct")
    have_replicas = config.get("num_replicas") or 1
    if not provisioning and isinstance(have_replicas, int) and have_replicas < spec.replicas:
        problem(
            f"num_replicas is {have_replicas}, asked for {spec.replicas}",
            "fewer copies than asked survive fewer failed servers",
            f"skyctl init --replicas {spec.replicas}",
        )
    return problems


def outdated(spec: StreamSpec, config: Mapping[str, Any]) -> list[str]:
    """What a stream made by an older version lacks, which ``skyctl init`` adds."""
    lacking: list[str] = []
    if mirror_of(config) is not None:
        return lacking  # a site's mirror: no subjects, no batches; the hub's log has them
    if not config.get("allow_atomic"):
        lacking.append("atomic batches (allow_atomic)")
    subjects = config.get("subjects") or []
    missing = [s for s in spec.subjects if s not in subjects]
    if missing:
        lacking.append(f"the subjects {', '.join(missing)}")
    return lacking


def _normal(key: str, value: Any) -> Any:
    """A setting as the server's JSON reports it, in the form ``StreamSpec`` states it."""
    if key in ("max_msgs", "max_bytes", "max_msgs_per_subject") and value in (None, 0):
        return -1  # the server reports "unlimited" as -1, some clients as 0
    if key == "max_age":
        return (value or 0) / 1e9  # nanoseconds on the wire; said in seconds
    if key in ("storage", "retention"):
        return value or {"storage": "file", "retention": "limits"}[key]
    if isinstance(value, bool) or value is None:
        return bool(value)
    return value


def _show(key: str, value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
