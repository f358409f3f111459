"""Services as ``get`` prints them: which ones (selector, sort), and how (kubectl's tables,
JSON/YAML, names, JSONPath and custom columns). ``get``, ``get -w`` and ``create -o``
print through this one ``View``; ``history`` shares its LABELS cell."""

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from cli.options import Format, Output
from cli.render import (
    Table,
    columns,
    list_object,
    service_object,
    service_row,
    to_json,
    to_yaml,
)
from registry.errors import InvalidInput

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from cli.columns import Column
    from cli.selector import Selector
    from cli.template import Path as JsonPath
    from cli.template import Template
    from events import Service
    from registry.services.projection import ServiceKey, ServiceRecord
    from registry.services.proof import Trust

__all__ = ["TABLE", "TABLES", "View", "labels_cell", "print_records"]

TABLES = (Output.table, Output.wide)
TABLE = Format(Output.table.value)


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
    View(fmt).print(records, single=single, now=now, trust=trust)


def labels_cell(service: "Service") -> str:
    """The LABELS column of ``--show-labels``, as kubectl writes it."""
    return ",".join(f"{k}={v}" for k, v in sorted(service.labels.items())) or "<none>"


class View:
    """What ``get``'s flags ask for, parsed once: which services, in which order, printed
    how. Templates and selectors are compiled here, before anything is read."""

    def __init__(
        self,
        fmt: Format,
        selector: str | None = None,
        show_labels: bool = False,
        no_headers: bool = False,
        sort_by: str | None = None,
        all_namespaces: bool = False,
    ) -> None:
        self.fmt = fmt
        self.all_namespaces = all_namespaces  # tables lead with NAMESPACE, as kubectl's
        self.output = fmt.output
        self.show_labels = show_labels
        self.no_headers = no_headers
        # Each service's ENDPOINTS (ready/total) for the tables, when they were read.
        self.statuses: dict[ServiceKey, str] | None = None
        self.selector: Selector | None = None
        self.sort: JsonPath | None = None
        self.template: Template | None = None
        self.columns: list[Column] | None = None
        if selector is not None:
            from cli.selector import parse_label_selector

            self.selector = parse_label_selector(selector)
        if sort_by:
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

    @property
    def says_when_empty(self) -> bool:
        """Tables say "No resources found" (on stderr); scripts' formats print what an
        empty list is (``{"items": []}``, or the template over it)."""
        return self.output in TABLES or self.columns is not None

    def matches(self, record: "ServiceRecord") -> bool:
        return self.selector is None or self.selector.matches(record.service.labels)

    def select(self, records: "Sequence[ServiceRecord]") -> list["ServiceRecord"]:
        chosen = [r for r in records if self.matches(r)]
        if self.sort is None:
            return chosen
        from cli.template import sort_key

        path = self.sort
        keyed = [(sort_key(path.find(service_object(r))), r) for r in chosen]
        if keyed and all(key == (0, 0) for key, _ in keyed):
            raise InvalidInput(
                "--sort-by", path.source, "no service has a value at this path (see -o json)"
            )
        keyed.sort(key=lambda pair: pair[0])  # stable: ties keep the registry's order
        return [record for _, record in keyed]

    # -- one list --------------------------------------------------------------------------

    @property
    def shows_proof(self) -> bool:
        """Whether what is printed may hold each service's proof (the wide table's PROOF,
        ``createdByProof`` in objects and templates): then its place is looked up."""
        return self.output is not Output.table and self.output is not Output.name

    @property
    def shows_endpoints(self) -> bool:
        """Tables (not custom columns) show each service's ENDPOINTS, ready/total."""
        return self.output in TABLES and self.columns is None

    def header(self) -> list[str]:
        if self.columns is not None:
            return [column.header for column in self.columns]
        header = columns(wide=self.output is Output.wide, all_namespaces=self.all_namespaces)
        if self.statuses is not None:
            header.insert(header.index("AGE"), "ENDPOINTS")
        return [*header, "LABELS"] if self.show_labels else header

    def row(
        self,
        record: "ServiceRecord",
        now: "datetime | None" = None,
        trust: "Trust | None" = None,
    ) -> list[str]:
        if self.columns is not None:
            obj = service_object(record, trust)
            return [column.cell(obj) for column in self.columns]
        row = service_row(
            record,
            wide=self.output is Output.wide,
            all_namespaces=self.all_namespaces,
            now=now,
            trust=trust,
        )
        if self.statuses is not None:
            age = columns(wide=False, all_namespaces=self.all_namespaces).index("AGE")
            row.insert(age, self.statuses.get(record.key, "<unknown>"))
        return [*row, labels_cell(record.service)] if self.show_labels else row

    def table(self, header: list[str], rows: list[list[str]]) -> str:
        if self.no_headers:  # widths from the rows alone, as kubectl's
            table = Table([""] * len(header), rows)
            return "\n".join(table.line(row) for row in rows)
        return Table(header, rows).render(rows)

    def print(
        self,
        records: "Sequence[ServiceRecord]",
        *,
        single: bool,
        now: "datetime | None" = None,
        trust: "Trust | None" = None,
    ) -> None:
        if self.output in TABLES or self.columns is not None:
            rows = [self.row(r, now, trust) for r in records]
            text = self.table(self.header(), rows)
            if text:
                print(text)
        elif self.output is Output.name:
            for record in records:
                print(f"service/{record.service.name}")
        else:
            obj = service_object(records[0], trust) if single else list_object(records, trust)
            if self.template is not None:
                sys.stdout.write(self.template.render(obj))  # no newline added, as kubectl
                sys.stdout.flush()
            else:
                print(to_json(obj) if self.output is Output.json else to_yaml(obj))
