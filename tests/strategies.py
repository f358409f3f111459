"""Hypothesis strategies for the event contract's models, shared by the tests of the
models, the codec and the JSON Schemas."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import strategies as st

from events import Port, Service, ServiceCreated, ServiceType

NAME_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
names = st.builds(
    lambda head, mid, tail: head + mid + tail if mid or tail else head,
    st.sampled_from(NAME_CHARS),
    st.text(NAME_CHARS + "-", max_size=20),
    st.text(NAME_CHARS, max_size=1),
).filter(lambda n: not n.endswith("-"))
ports = st.builds(
    Port,
    port=st.integers(1, 65535),
    target_port=st.integers(1, 65535),
    protocol=st.sampled_from(["TCP", "UDP"]),
)
services = st.builds(
    Service,
    namespace=names,
    name=names,
    type=st.sampled_from(list(ServiceType)),
    selector=st.dictionaries(names, names | st.just(""), max_size=4),
    ports=st.lists(ports, max_size=4, unique_by=lambda p: (p.port, p.protocol)).map(tuple),
    cluster=st.none() | names,
)
times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
created = st.builds(
    ServiceCreated,
    id=st.uuids().map(lambda u: u.hex),
    time=times,
    actor=st.just("alice@host"),
    prev=st.none() | st.text("0123456789abcdef", min_size=64, max_size=64),
    service=services,
)
