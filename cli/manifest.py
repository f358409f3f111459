"""Manifests: what ``get -o yaml`` prints, read back for ``apply``, ``create -f``, ``delete -f``
and ``edit``.

A manifest is Kubernetes-shaped (``apiVersion: skyflow.io/v1``, ``kind: Service``,
``metadata``, ``spec``), one or many YAML documents per file, or a ``kind: List``; JSON is
read the same way. Everything ``get -o yaml`` prints is accepted, so
``get -o yaml > f; edit f; apply -f f`` round-trips: the read-only fields it prints (uid,
creation time, who created it) and the ``status`` block (what controllers report, as
``kubectl apply`` ignores it) are accepted and ignored, and ``metadata.resourceVersion``
makes the apply conditional on that revision. ``spec.clusterIP`` (an IPv4 address, or
``None``: headless) and ``spec.ports[].nodePort`` ask for those addresses; left out, the
registry chooses them on create and keeps the ones a live service holds on apply.
Anything else is refused before anything is written: an unknown field, a wrong kind, a
missing name, each named with its file and document.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from cli.parse import check_external_name, parse_cluster_ip, parse_external_name, parse_type
from registry.errors import InvalidInput

if TYPE_CHECKING:
    from events import Service

__all__ = [
    "API_VERSION",
    "MAX_DIGITS",
    "Manifest",
    "decode",
    "load_manifests",
    "parse_documents",
    "read_stdin",
    "read_text",
]

API_VERSION = "skyflow.io/v1"
_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class Manifest:
    service: Service
    resource_version: int | None  # apply only on top of this revision
    origin: str  # "web.yaml, document 2": where it came from, for messages


def load_manifests(paths: Sequence[str], *, namespace: str | None) -> list[Manifest]:
    """Every service in the files (``-`` for stdin, a directory for its manifests), all
    checked before the caller writes any of them."""
    if not paths:
        raise InvalidInput("-f", "", "give a file, a directory or - (standard input)")
    manifests: list[Manifest] = []
    for path in paths:
        for name, text in _read(path):
            manifests.extend(parse_documents(text, name, namespace=namespace))
    return manifests


def _read(path: str) -> Iterator[tuple[str, str]]:
    if path == "-":
        yield "<stdin>", read_stdin("-f")
        return
    target = Path(path)
    if target.is_dir():
        files = sorted(p for p in target.iterdir() if p.suffix in _SUFFIXES and p.is_file())
        if not files:
            raise InvalidInput("-f", path, "the directory has no .yaml, .yml or .json file")
    elif target.is_file():
        files = [target]
    else:
        raise InvalidInput("-f", path, "no such file or directory")
    for file in files:
        yield str(file), read_text(file, "-f")


def read_stdin(what: str) -> str:
    """Standard input as UTF-8 text, or ``InvalidInput`` saying where it is not."""
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:  # already text (a test's, or an embedding program's)
        return sys.stdin.read()
    return decode(stream.read(), what, "<stdin>")


def read_text(path: Path, what: str) -> str:
    """A file as UTF-8 text, or ``InvalidInput`` naming it and why it cannot be read."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InvalidInput(what, str(path), "it is no longer there") from None
    except OSError as exc:
        raise InvalidInput(what, str(path), f"cannot be read ({exc.strerror or exc})") from None
    return decode(data, what, str(path))


def decode(data: bytes, what: str, origin: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InvalidInput(
            what, origin, f"not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line})"
        ) from None


def parse_documents(text: str, origin: str, *, namespace: str | None) -> list[Manifest]:
    """The services in one file's text; InvalidInput naming the file and document."""
    import yaml

    try:
        documents = list(yaml.load_all(text, Loader=_loader()))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "not YAML or JSON"
        raise InvalidInput("manifest", origin, f"{problem}{where}") from None
    manifests = []
    for index, document in enumerate(documents, 1):
        if document is None:
            continue  # an empty document, as between two `---`
        where = f"{origin}, document {index}" if len(documents) > 1 else origin
        if isinstance(document, dict) and document.get("kind") == "List":
            items = document.get("items")
            if not isinstance(items, list) or set(document) - {
                "apiVersion",
                "kind",
                "items",
                "metadata",
            }:
                raise InvalidInput("manifest", where, "a List holds apiVersion, kind and items")
            for number, item in enumerate(items, 1):
                manifests.append(_manifest(item, f"{where}, item {number}", namespace))
        else:
            manifests.append(_manifest(document, where, namespace))
    return manifests


# More digits than any number a manifest holds (a port, a revision) can have; longer ones
# are refused as they are read, before Python converts them (it refuses past 4,300
# digits, and takes time quadratic in the digits below that).
MAX_DIGITS = 24


@functools.cache
def _loader() -> Any:
    """The YAML (and JSON) loader: safe (libyaml's, when PyYAML has it), and refusing an
    integer longer than ``MAX_DIGITS`` with the line it is on."""
    import yaml

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    tags: dict[tuple[str, tuple[bool, bool]], str] = {}

    class Loader(base):  # type: ignore[misc,valid-type]
        def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
            # A scalar's tag depends on its text alone (the safe loader has no path
            # resolvers), and most of a manifest's texts recur in every document.
            if kind is not yaml.ScalarNode:
                return super().resolve(kind, value, implicit)
            key = (value, implicit)
            tag = tags.get(key)
            if tag is None:
                if len(tags) >= 4096:
                    tags.clear()
                tag = tags[key] = super().resolve(kind, value, implicit)
            return tag

    def construct_int(loader: Any, node: Any) -> int:
        text = str(loader.construct_scalar(node))
        digits = text.replace("_", "").lstrip("+-")
        if len(digits) > MAX_DIGITS:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"a number of {len(digits)} digits ({text[:12]}...), where at most "
                f"{MAX_DIGITS} fit,",
                node.start_mark,
            )
        value: int = yaml.constructor.SafeConstructor.construct_yaml_int(loader, node)
        return value

    Loader.add_constructor(_INT, construct_int)
    return Loader


_INT = "tag:yaml.org,2002:int"


def _manifest(document: Any, where: str, namespace: str | None) -> Manifest:
    from pydantic import ValidationError

    from events import Service

    try:
        doc = _document_model().model_validate(document)
    except ValidationError as exc:
        raise _invalid(exc, where) from None
    meta, spec = doc.metadata, doc.spec
    if namespace is not None and meta.namespace is not None and meta.namespace != namespace:
        raise InvalidInput(
            "manifest",
            where,
            f"metadata.namespace: {meta.namespace!r} is not the namespace asked for ({namespace})",
        )
    cluster_ip = None
    if spec.clusterIP is not None:
        try:
            cluster_ip = parse_cluster_ip(spec.clusterIP)
        except InvalidInput as exc:
            raise InvalidInput(
                "manifest", where, f"spec.clusterIP: {spec.clusterIP!r}: {exc.reason}"
            ) from None
    for index, port in enumerate(spec.ports):
        _check_port(port, f"spec.ports[{index}]", where)
    try:
        service_type: object = parse_type(spec.type)
    except InvalidInput:
        service_type = None  # the service's own validation names spec.type below
    try:
        external_name = parse_external_name(spec.externalName)
        if service_type is not None:
            check_external_name(service_type, external_name, "spec.externalName")
    except InvalidInput as exc:
        value = spec.externalName if spec.externalName is not None else ""
        raise InvalidInput(
            "manifest", where, f"spec.externalName: {value!r}: {exc.reason}"
        ) from None
    try:
        service = Service.model_validate(
            {
                "namespace": meta.namespace or namespace or "default",
                "name": meta.name,
                "labels": meta.labels,
                "type": spec.type,
                "selector": spec.selector,
                # Validated as the service's, so an error names spec.ports[1].nodePort.
                "ports": [
                    {
                        "port": p.port,
                        "target_port": p.targetPort if p.targetPort is not None else p.port,
                        "protocol": p.protocol,
                        "node_port": p.nodePort,
                        "name": p.name,
                    }
                    for p in spec.ports
                ],
                "cluster": spec.cluster,
                "cluster_ip": cluster_ip,
                "external_name": external_name,
            }
        )
    except ValidationError as exc:
        raise _invalid(exc, where, prefix={"namespace": "metadata", "name": "metadata"}) from None
    return Manifest(service, _revision(meta.resourceVersion, where), where)


def _check_port(port: Any, field: str, where: str) -> None:
    """A port's name and target as ``-p`` checks them, each failure saying what a port
    name or number is (the Service's own validation would say which branch of
    ``targetPort``'s number-or-name union failed first: "Input should be a valid
    integer" for a name)."""
    from events.names import check_port_name

    target = port.targetPort
    if isinstance(target, int) and not 1 <= target <= 65535:
        raise InvalidInput("manifest", where, f"{field}.targetPort: {target} is outside 1-65535")
    for name, value in (("name", port.name), ("targetPort", target)):
        if isinstance(value, str):
            try:
                check_port_name(value)
            except ValueError as exc:
                raise InvalidInput("manifest", where, f"{field}.{name}: {exc}") from None


def _revision(value: str | int | None, where: str) -> int | None:
    if value is None or value == "":
        return None
    text = str(value)
    # 0: a service not stored yet (``create --dry-run -o yaml``): apply creates it only.
    if not (text.isascii() and text.isdigit()):
        raise InvalidInput(
            "manifest", where, f"metadata.resourceVersion: {text!r} is not a revision"
        )
    return int(text)


# A Service field by the name manifests give it.
_MANIFEST_NAMES = {
    "target_port": "targetPort",
    "node_port": "nodePort",
    "cluster_ip": "clusterIP",
    "external_name": "externalName",
}


def _invalid(exc: Any, where: str, prefix: dict[str, str] | None = None) -> InvalidInput:
    error = exc.errors()[0]
    loc = [_MANIFEST_NAMES.get(str(part), str(part)) for part in error["loc"]]
    if prefix is not None and not loc:
        loc = ["spec"]  # a rule across a Service's fields (a headless NodePort, say)
    elif prefix and loc[0] in prefix:
        loc.insert(0, prefix[loc[0]])
    elif loc and loc[0] not in ("apiVersion", "kind", "metadata", "spec", "status"):
        loc.insert(0, "spec")  # a Service field: manifests put it under spec
    field = "".join(f"[{part}]" if part.isdigit() else f".{part}" for part in loc)[1:]
    field = field or "document"
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown field"
    return InvalidInput("manifest", where, f"{field}: {message}")


@functools.cache
def _document_model() -> Any:
    """The document models, built on first use (only manifest commands pay for them)."""
    from pydantic import BaseModel, ConfigDict, Field, field_validator

    strict = ConfigDict(extra="forbid")

    class PortDocument(BaseModel):
        model_config = strict
        port: int
        targetPort: int | str | None = None  # a number, or a task's port name
        protocol: str = "TCP"
        name: str | None = None
        nodePort: int | None = None

        @field_validator("port", "targetPort", "nodePort", mode="before")
        @classmethod
        def _not_a_boolean(cls, value: object) -> object:
            # pydantic would read true as 1, and YAML reads on, off, yes and no as booleans.
            if isinstance(value, bool):
                raise ValueError(
                    f"{str(value).lower()} is not a port (YAML reads yes, no, on and off as "
                    "true and false: quote a port name)"
                )
            return value

    class Metadata(BaseModel):
        model_config = strict
        name: str
        namespace: str | None = None
        labels: dict[str, str] = Field(default_factory=dict)
        resourceVersion: str | int | None = None
        # Read-only: printed by `get -o yaml`, ignored when applied.
        uid: str | None = None
        creationTimestamp: str | None = None
        createdBy: str | None = None
        createdByProof: str | None = None

    class Spec(BaseModel):
        model_config = strict
        type: str = "ClusterIP"
        selector: dict[str, str] = Field(default_factory=dict)
        ports: list[PortDocument] = Field(default_factory=list)
        cluster: str | None = None
        clusterIP: str | None = None
        externalName: str | None = None

    class ServiceDocument(BaseModel):
        model_config = strict
        apiVersion: Literal["skyflow.io/v1"]
        kind: Literal["Service"]
        metadata: Metadata
        spec: Spec = Field(default_factory=Spec)
        # Printed by get (a load balancer's address); controllers report it
        # (Registry.set_status), so apply ignores it, as kubectl does.
        status: dict[str, Any] | None = None

    return ServiceDocument
