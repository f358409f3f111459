"""What ``get`` prints, for every kind it lists (services, tasks, endpoints): which items
(selector, sort), and how (kubectl's tables, JSON/YAML, names, JSONPath and custom
columns), once and in a watch. A kind says what its object, name, labels and table rows
are (a ``Listing`` subclass); everything else is here, once: ``get``, ``get -w`` and
``create -o`` print through it, and ``history`` shares its LABELS cell."""

import sys
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from cli.options import Format, Output
from cli.render import (
    API_VERSION,
    Table,
    columns,
    endpoints_status,
    record_proof,
    service_object,
    service_row,
    signing_in_use,
    to_json,
    to_yaml,
)
from registry.errors import InvalidInput

if TYPE_CHECKING:
    from datetime import datetime

    from cli.columns import Column
    from cli.selector import Selector
    from cli.template import Path as JsonPath
    from cli.template import Template
    from registry.discovery.endpoints import Endpoints
    from registry.services.projection import ServiceKey, ServiceRecord
    from registry.services.proof import Trust

__all__ = [
    "TABLE",
    "TABLES",
    "Listing",
    "ServiceListing",
    "WatchPrinter",
    "labels_cell",
    "print_records",
]

TABLES = (Output.table, Output.wide)
TABLE = Format(Output.table.value)

T = TypeVar("T")


def print_records(
    records: "Sequence[ServiceRecord]",
    output: Output | Format,
    *,
    single: bool,
    now: "datetime | None" = None,
    trust: "Trust | None" = None,
) -> None:
    """Services as ``get -o`` prints them (``create -o`` prints what it made this way)."""
    fmt = output if isinstance(output, Format) else Format(output.value)
    ServiceListing(fmt, now=now, trust=trust).print(records, single=single)


def labels_cell(labels: Mapping[str, str]) -> str:
    """The LABELS column of ``--show-labels``, as kubectl writes it."""
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "<none>"


class Listing(Generic[T]):
    """What ``get``'s flags ask for, parsed once: which items, in which order, printed
    how. Templates and selectors are compiled here, before anything is read, so a bad
    one is one line and costs no round trip.

    A kind's subclass says what an item is: ``object`` (what ``-o json`` prints, and what
    paths, custom columns and ``--sort-by`` read), ``name``, ``labels``, ``key`` and its
    table (``header``, ``rows``)."""

    kind: ClassVar[str]  # as ``-o name`` writes it: ``service/web``
    noun: ClassVar[str]  # in messages: "no service has a value at this path"

    def __init__(
        self,
        fmt: Format,
        selector: str | None = None,
        no_headers: bool = False,
        sort_by: str | None = None,
        all_namespaces: bool = False,
    ) -> None:
        self.fmt = fmt
        self.all_namespaces = all_namespaces  # tables lead with NAMESPACE, as kubectl's
        self.output = fmt.output
        self.no_headers = no_headers
        self.selector: Selector | None = None
        self.sort: JsonPath | None = None
        self.template: Template | None = None
        self.columns: list[Column] | None = None
        if selector is not None:
            from cli.selector import parse_label_selector

            self.selector = parse_label_selector(selector)
        if sort_by is not None:
            from cli.template import relaxed_path

            self.sort = relaxed_path(sort_by)
        if fmt.name in ("jsonpath", "jsonpath-file"):
            from cli import template

            self.template = template.Template(self._argument_text())
        elif fmt.name in ("custom-columns", "custom-columns-file"):
            from cli.columns import columns_from_file, parse_columns

            if fmt.name == "custom-columns":
                self.columns = parse_columns(fmt.argument)
            else:
                self.columns = columns_from_file(fmt.argument, self._argument_text())

    def _argument_text(self) -> str:
        if not self.fmt.name.endswith("-file"):
            return self.fmt.argument
        try:
            return Path(self.fmt.argument).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise InvalidInput(self.fmt.name, self.fmt.argument, reason) from None

    # -- what a kind says about its items ---------------------------------------------------

    def object(self, item: T) -> dict[str, Any]:
        raise NotImplementedError

    def name(self, item: T) -> str:
        raise NotImplementedError

    def labels(self, item: T) -> Mapping[str, str]:
        raise NotImplementedError

    def key(self, item: T) -> Hashable:
        raise NotImplementedError

    def table_header(self) -> list[str]:
        """The kind's own table header (NAMESPACE added under -A by ``header``)."""
        raise NotImplementedError

    def table_rows(self, item: T) -> list[list[str]]:
        """The kind's own table rows for one item: usually one, more where an item is
        shown a row per part (``get endpoints -o wide``: one per address)."""
        raise NotImplementedError

    def namespace(self, item: T) -> str:
        namespace = self.object(item)["metadata"]["namespace"]
        assert isinstance(namespace, str)
        return namespace

    # -- which, in which order --------------------------------------------------------------

    @property
    def says_when_empty(self) -> bool:
        """Tables say "No resources found" (on stderr); scripts' formats print what an
        empty list is (``{"items": []}``, or the template over it)."""
        return self.tabular

    @property
    def tabular(self) -> bool:
        return self.output in TABLES or self.columns is not None

    def matches(self, item: T) -> bool:
        return self.selector is None or self.selector.matches(self.labels(item))

    def select(self, items: Sequence[T]) -> list[T]:
        chosen = [item for item in items if self.matches(item)]
        if self.sort is None:
            return chosen
        from cli.template import sort_key

        path = self.sort
        keyed = [(sort_key(path.find(self.object(item))), item) for item in chosen]
        if keyed and all(key == (0, 0) for key, _ in keyed):
            raise InvalidInput(
                "--sort-by", path.source, f"no {self.noun} has a value at this path (see -o json)"
            )
        keyed.sort(key=lambda pair: pair[0])  # stable: ties keep the registry's order
        return [item for _, item in keyed]

    # -- printed how ------------------------------------------------------------------------

    def header(self) -> list[str]:
        if self.columns is not None:
            return [column.header for column in self.columns]
        header = self.table_header()
        return ["NAMESPACE", *header] if self.all_namespaces else header

    def rows(self, item: T) -> list[list[str]]:
        if self.columns is not None:
            obj = self.object(item)
            return [[column.cell(obj) for column in self.columns]]
        rows = self.table_rows(item)
        if self.all_namespaces:
            namespace = self.namespace(item)
            rows = [[namespace, *row] for row in rows]
        return rows

    def table(self, header: list[str], rows: list[list[str]]) -> str:
        if self.no_headers:  # widths from the rows alone, as kubectl's
            table = Table([""] * len(header), rows)
            return "\n".join(table.line(row) for row in rows)
        return Table(header, rows).render(rows)

    def list_object(self, items: Sequence[T]) -> dict[str, Any]:
        return {
            "apiVersion": API_VERSION,
            "kind": "List",
            "items": [self.object(item) for item in items],
        }

    def seen(self, items: Sequence[T]) -> None:
        """Called with the items about to be shown together (a listing, a watch's first
        rows), before any is printed: what a kind's cells depend on the whole of."""

    def print(self, items: Sequence[T], *, single: bool) -> None:
        """The items as one listing (``single``: the one item asked for by name, whose
        object is printed itself rather than in a List, as kubectl's)."""
        self.seen(items)
        if self.tabular:
            rows = [row for item in items for row in self.rows(item)]
            text = self.table(self.header(), rows)
            if text:
                print(text)
        elif self.output is Output.name:
            for item in items:
                print(f"{self.kind}/{self.name(item)}")
        else:
            obj = self.object(items[0]) if single and items else self.list_object(items)
            self.print_object(obj)

    def print_object(self, obj: dict[str, Any], *, compact: bool = False) -> None:
        """One object (or a watch event), as JSON, YAML or through the template."""
        if self.template is not None:
            sys.stdout.write(self.template.render(obj))  # no newline added, as kubectl
            sys.stdout.flush()
        elif self.output is Output.json:
            print(to_json(obj, compact=compact), flush=True)
        else:
            print(("---\n" if compact else "") + to_yaml(obj), flush=True)


class WatchPrinter(Generic[T]):
    """``get -w``: the items first as ADDED rows, then each change, a line each, flushed;
    ``-o json`` prints one compact ``{"type": ..., "object": ...}`` per line, ``-o name``
    ``KIND\tkind/NAME``, as ``kubectl get -w``.

    With a selector, a change that moves an item into the selection shows as ADDED and
    one that moves it out as DELETED, as a label-selected watch does in Kubernetes.
    """

    def __init__(self, view: Listing[T]) -> None:
        self.view = view
        self.table: Table | None = None
        self.shown: dict[Hashable, T] = {}  # each item shown, as last shown

    def snapshot(self, items: Sequence[T]) -> None:
        view = self.view
        chosen = view.select(items)
        view.seen(chosen)
        if view.tabular:
            rows = [["ADDED", *row] for item in chosen for row in view.rows(item)]
            header = ["EVENT", *view.header()]
            if view.no_headers:
                header = [""] * len(header)
            self.table = Table(header, rows, min_widths=[len("MODIFIED")])
            if not view.no_headers:
                print(self.table.line(self.table.header), flush=True)
        for item in chosen:
            self.shown[view.key(item)] = item
            self.line("ADDED", item)

    def change(self, kind: str, item: T) -> None:
        """An item ADDED, MODIFIED or DELETED, as someone watching the selected ones sees
        it (nothing, if it is neither shown nor selected)."""
        key = self.view.key(item)
        seen = self.shown_kind(kind, item)
        if seen is None:
            return
        if seen == "DELETED":
            self.shown.pop(key, None)
        else:
            self.shown[key] = item
        self.line(seen, item)

    def shown_kind(self, kind: str, item: T) -> str | None:
        if self.view.selector is None:
            return kind
        was_shown = self.view.key(item) in self.shown
        if kind == "DELETED":
            return "DELETED" if was_shown else None
        if self.view.matches(item):
            return kind if was_shown else "ADDED"
        return "DELETED" if was_shown else None

    def line(self, kind: str, item: T) -> None:
        view = self.view
        if view.tabular:
            assert self.table is not None, "a watch prints its snapshot first"
            for row in view.rows(item):
                print(self.table.line([kind, *row]), flush=True)
        elif view.output is Output.name:
            print(f"{kind}\t{view.kind}/{view.name(item)}", flush=True)
        else:
            view.print_object({"type": kind, "object": view.object(item)}, compact=True)


class ServiceListing(Listing["ServiceRecord"]):
    """``get service``'s view: kubectl's service table, with ENDPOINTS (ready/total) where
    they were read, LABELS with ``--show-labels``, AGE as at ``now`` (the past of
    ``--at``), and each service's proof as ``trust`` places it."""

    kind = "service"
    noun = "service"

    def __init__(
        self,
        fmt: Format,
        selector: str | None = None,
        show_labels: bool = False,
        no_headers: bool = False,
        sort_by: str | None = None,
        all_namespaces: bool = False,
        *,
        now: "datetime | None" = None,
        trust: "Trust | None" = None,
    ) -> None:
        super().__init__(fmt, selector, no_headers, sort_by, all_namespaces)
        self.show_labels = show_labels
        self.now = now
        self.trust = trust
        # Each service's endpoints, when they were read: ENDPOINTS (ready/total) in the
        # tables, and ``status.endpoints`` in the objects of a watch.
        self.endpoints: dict[ServiceKey, Endpoints] | None = None
        self.objects_carry_endpoints = False
        # Whether an unsigned service's PROOF reads unproven (signing in use) or -.
        self.signing = trust is not None

    def seen(self, items: "Sequence[ServiceRecord]") -> None:
        if self.output is Output.wide and not self.signing:
            proofs = [record_proof(item, self.trust) for item in items]
            self.signing = signing_in_use(self.trust, proofs)

    @property
    def shows_proof(self) -> bool:
        """Whether what is printed may hold each service's proof (the wide table's PROOF,
        ``createdByProof`` in objects and templates): then its place is looked up."""
        return self.output is not Output.table and self.output is not Output.name

    @property
    def shows_endpoints(self) -> bool:
        """Tables (not custom columns) show each service's ENDPOINTS, ready/total."""
        return self.output in TABLES and self.columns is None

    def object(self, item: "ServiceRecord") -> dict[str, Any]:
        obj = service_object(item, self.trust)
        if self.objects_carry_endpoints and self.endpoints is not None:
            endpoints = self.endpoints.get(item.key)
            if endpoints is not None:
                obj["status"]["endpoints"] = endpoints_status(endpoints)
        return obj

    def name(self, item: "ServiceRecord") -> str:
        return item.service.name

    def labels(self, item: "ServiceRecord") -> Mapping[str, str]:
        return item.service.labels

    def key(self, item: "ServiceRecord") -> Hashable:
        return item.key

    def namespace(self, item: "ServiceRecord") -> str:
        return item.service.namespace

    def table_header(self) -> list[str]:
        header = columns(wide=self.output is Output.wide)
        if self.endpoints is not None:
            header.insert(header.index("AGE"), "ENDPOINTS")
        return [*header, "LABELS"] if self.show_labels else header

    def table_rows(self, item: "ServiceRecord") -> list[list[str]]:
        wide = self.output is Output.wide
        proof = record_proof(item, self.trust) if wide else None  # worked out once
        if wide and not self.signing:  # a watch's change may be the first signed one
            self.signing = signing_in_use(self.trust, [proof])
        row = service_row(
            item, wide=wide, now=self.now, trust=self.trust, signing=self.signing, proof=proof
        )
        if self.endpoints is not None:
            age = columns().index("AGE")
            endpoints = self.endpoints.get(item.key)
            row.insert(age, "<unknown>" if endpoints is None else endpoints.status)
        return [[*row, labels_cell(item.service.labels)] if self.show_labels else row]
