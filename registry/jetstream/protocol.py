"""JetStream's vocabulary, with no client library: header names, error codes, the API's
errors as the registry's, and the check that refuses a stream which could lose events.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from events.stream import StreamSpec
from registry.errors import PermissionDenied, ServerError

__all__ = [
    "DEFAULT_URL",
    "EXPECTED_LAST_SUBJECT_SEQUENCE",
    "OWN_WRITE_IN_FLIGHT",
    "STREAM_NOT_FOUND",
    "WRONG_LAST_SEQUENCE",
    "ApiError",
    "api_error",
    "stream_problems",
]

DEFAULT_URL = "nats://127.0.0.1:4222"

EXPECTED_LAST_SUBJECT_SEQUENCE = "Nats-Expected-Last-Subject-Sequence"
# R1 streams answer a failed expectation with 10071, replicated ones with 10164.
WRONG_LAST_SEQUENCE = frozenset({10071, 10164})
# A replicated stream's leader answers a retry whose first attempt it is still
# proposing with 10158 "duplicate message id is in process": not stored yet, but it may
# be, so the retry goes on until the id is stored (a duplicate ack) or the time is up.
OWN_WRITE_IN_FLIGHT = 10158
STREAM_NOT_FOUND = 10059
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


def stream_problems(spec: StreamSpec, config: Mapping[str, Any]) -> list[str]:
    """Why a stream configuration (as the server's JSON has it) could lose or rewrite events."""
    problems = []
    for key, want in spec.required.items():
        have = config.get(key)
        if key in ("max_msgs", "max_bytes", "max_msgs_per_subject") and have in (None, 0):
            have = -1  # the server reports "unlimited" as -1, some clients as 0
        if key == "max_age":
            have = (have or 0) / 1e9  # nanoseconds on the wire; said in seconds
        if key in ("deny_delete", "deny_purge", "allow_rollup_hdrs", "sealed"):
            have = bool(have)
        if have != want:
            problems.append(f"{key} is {have:g}" if isinstance(have, float) else f"{key} is {have}")
            problems[-1] += f", must be {want}"
    if not config.get("allow_direct"):
        problems.append("allow_direct is off, reads need it")
    subjects = config.get("subjects") or []
    missing = set(spec.subjects) - set(subjects)
    if missing:
        problems.append(f"subjects {sorted(subjects)} lack {sorted(missing)}")
    return problems
