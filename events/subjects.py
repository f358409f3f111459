"""Subject names: one subject per service, ``skyflow.svc.<namespace>.<name>``.

A subject per service is what lets JetStream itself give per-service history and
per-service optimistic concurrency, and lets watchers filter on the server with
wildcards instead of receiving everything and discarding.
"""

from __future__ import annotations

__all__ = ["PREFIX", "SUBJECTS", "filter_for", "parse_subject", "subject_for"]

PREFIX = "skyflow.svc"
# Exactly two tokens after the prefix: the stream accepts nothing else.
SUBJECTS = f"{PREFIX}.*.*"


def subject_for(namespace: str, name: str) -> str:
    return f"{PREFIX}.{namespace}.{name}"


def filter_for(namespace: str | None = None, name: str | None = None) -> str:
    """The subject filter for one service, one namespace, or (both None) all of them."""
    return f"{PREFIX}.{namespace or '*'}.{name or '*'}"


def parse_subject(subject: str) -> tuple[str, str]:
    """``(namespace, name)`` of a service subject; ValueError for anything else."""
    head, _, rest = subject.rpartition(".")
    prefix, _, namespace = head.rpartition(".")
    if prefix != PREFIX or not namespace or not rest:
        raise ValueError(f"{subject!r} is not a service subject ({SUBJECTS})")
    return namespace, rest
