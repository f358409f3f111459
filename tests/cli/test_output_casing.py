"""One key casing in everything skyctl prints as JSON or YAML: kubectl's camelCase
(``targetPort``, ``clusterIP``), at every depth, whichever command prints it; only the
keys of the user's own maps (labels, selectors, a task's named ports) are printed as
written. The stored events stay snake_case (docs/events.md): that is the wire, not the
CLI."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli.render import camel_key, camel_keys
from events import Service, ServiceType
from events.task import Task
from registry.client import Registry
from tests.helpers import Lines, skyctl, start
from tests.strategies import names, services

CAMEL = re.compile(r"^[a-z][a-zA-Z0-9]*$")
USER_MAPS = {"labels", "selector", "annotations"}
label_maps = st.dictionaries(names, names | st.just(""), max_size=3)


def bad_keys(obj: Any, path: str = "") -> Iterator[str]:
    """Every key of ``obj`` not in camelCase, by its path; the contents of a user's map
    (labels, selector, annotations; a task's ``ports`` by name) are data, not keys."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            here = f"{path}.{key}"
            if not isinstance(key, str) or not CAMEL.match(key):
                yield here
            if isinstance(value, dict) and (key in USER_MAPS or key == "ports"):
                continue
            yield from bad_keys(value, here)
    elif isinstance(obj, list):
        for i, item in enumerate(obj):
            yield from bad_keys(item, f"{path}[{i}]")


def test_camel_key() -> None:
    assert camel_key("target_port") == "targetPort"
    assert camel_key("cluster_ip") == "clusterIP"  # kubectl's spelling, as get prints it
    assert camel_key("load_balancer") == "loadBalancer"
    assert camel_key("name") == "name"
    stored = {"labels": {"my_key": "v"}, "ports": [{"node_port": 1}], "spec": {"ports": {"a_b": 1}}}
    assert camel_keys(stored) == {
        "labels": {"my_key": "v"},
        "ports": [{"nodePort": 1}],
        "spec": {"ports": {"a_b": 1}},
    }


def _shaped(service: Service, ns: str, labels: dict[str, str]) -> Service:
    """A generated service the registry will take, named apart from every other example's
    (one namespace for all: each namespace of tasks costs the server a stream)."""
    external = "db.example.com" if service.type == ServiceType.EXTERNAL_NAME else None
    return service.model_copy(
        update={
            "namespace": ns,
            "name": f"c{uuid.uuid4().hex[:8]}-{service.name}",
            "labels": labels,
            "external_name": external,
        }
    )


def _json(*args: str, url: str) -> Any:
    result = skyctl(*args, url=url)
    assert result.code == 0, (args, result.err)
    return json.loads(result.out)


def _json_lines(*args: str, url: str) -> list[Any]:
    result = skyctl(*args, url=url)
    assert result.code == 0, (args, result.err)
    return [json.loads(line) for line in result.lines]


def _yaml(*args: str, url: str) -> Any:
    result = skyctl(*args, url=url)
    assert result.code == 0, (args, result.err)
    return yaml.safe_load(result.out)


def _create_args(service: Service) -> list[str]:
    args = ["create", "service", service.name, "-n", service.namespace]
    args += ["-t", service.type.value]
    for key, value in service.selector.items():
        args += ["-s", f"{key}={value}"]
    for port in service.ports:
        args += ["-p", f"{port.port}:{port.target_port}/{port.protocol.value}"]
    if service.cluster is not None:
        args += ["-c", service.cluster]
    for key, value in service.labels.items():
        args += ["--labels", f"{key}={value}"]
    if service.external_name is not None:
        args += ["--external-name", service.external_name]
    return args


@settings(
    max_examples=8,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(service=services, labels=label_maps, task_labels=label_maps)
def test_every_json_output_is_camel_case(
    url: str, ns: str, service: Service, labels: dict[str, str], task_labels: dict[str, str]
) -> None:
    service = _shaped(service, ns, labels)
    name = service.name
    printed: dict[str, Any] = {}
    # What --dry-run would create, before anything is written.
    printed["create --dry-run -o json"] = _json(
        *_create_args(service), "--dry-run", "-o", "json", url=url
    )
    task = Task(
        namespace=ns,
        name=f"t-{name}",
        address="10.9.0.1",
        labels={**task_labels, **service.selector},
        ports={"http-alt": 8080},
    )

    async def write_and_read() -> None:
        async with await Registry.connect(url) as registry:
            await registry.create(service)
            await registry.apply(service.model_copy(update={"labels": {**labels, "x": "y"}}))
            async with registry.announce(task, ttl=30):
                await asyncio.to_thread(read_all)

    def read_all() -> None:
        printed["get -o json"] = _json("get", "svc", name, "-n", ns, "-o", "json", url=url)
        printed["get -o yaml"] = _yaml("get", "svc", "-n", ns, "-o", "yaml", url=url)
        printed["history -o json"] = _json("history", "svc", name, "-n", ns, "-o", "json", url=url)
        printed["history -o yaml"] = _yaml("history", "svc", name, "-n", ns, "-o", "yaml", url=url)
        printed["events -o json"] = _json_lines(
            "events", "-n", ns, "--for", f"service/{name}", "-o", "json", url=url
        )
        printed["get endpoints -o json"] = _json(
            "get", "endpoints", "-n", ns, "-o", "json", url=url
        )
        printed["get tasks -o json"] = _json("get", "tasks", "-n", ns, "-o", "json", url=url)

    asyncio.run(write_and_read())
    for command, obj in printed.items():
        assert list(bad_keys(obj)) == [], command
    # The stored service's own keys are all there, recased (nothing dropped).
    events = printed["events -o json"]
    assert {"targetPort", "nodePort"} <= {
        key for port in events[0]["event"]["service"]["ports"] for key in port
    } or not service.ports
    assert "clusterIP" in events[0]["event"]["service"]


def test_watch_json_is_camel_case(url: str, ns: str) -> None:
    """``get -w -o json``'s first line (a process of its own: a watch runs until stopped)."""
    created = skyctl(
        "create", "service", "w", "-n", ns, "-p", "80:8080", "--labels", "a_b=1", url=url
    )
    assert created.code == 0, created.err
    watch = start("get", "svc", "-n", ns, "-w", "-o", "json", url=url)
    lines = Lines(watch)
    first = json.loads(lines.next(timeout=30))
    assert first["type"] == "ADDED"
    assert first["object"]["spec"]["ports"][0]["targetPort"] == 8080
    assert first["object"]["metadata"]["labels"] == {"a_b": "1"}  # user data, as written
    assert list(bad_keys(first)) == []


def test_task_transitions_print_camel_case() -> None:
    """``events --for task/NAME -o json`` prints a transition as every object: camelCase
    (``sourceSeq``), the task's labels and named ports as written."""
    from datetime import UTC, datetime

    from cli.transitions import transition_object
    from events.membership import TaskJoined

    task = Task(
        namespace="shop",
        name="web-1",
        address="10.0.0.1",
        labels={"app_name": "web"},
        ports={"http-alt": 8080},
    )
    moment = datetime(2026, 12, 5, tzinfo=UTC)
    joined = TaskJoined(at=moment, source_seq=7, instance="a" * 32, since=moment, task=task)
    obj = transition_object(joined, moment)
    assert obj["sourceSeq"] == 7 and obj["task"]["labels"] == {"app_name": "web"}
    assert list(bad_keys(obj)) == []
