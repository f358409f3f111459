"""kubectl's JSONPath templates and custom columns over python-jsonpath, without a server.

The examples are kubectl's own (its "JSONPath Support" reference page), run on the
objects ``skyctl get -o json`` prints.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cli.columns import columns_from_file, parse_columns
from cli.template import Template, compile_path, relaxed_path, sort_key, text_of
from registry.errors import InvalidInput


def service(name: str, kind: str, ports: list[int], labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "skyflow.io/v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "shop", "labels": labels},
        "spec": {
            "type": kind,
            "selector": {"app": name},
            "ports": [{"port": p, "targetPort": p, "protocol": "TCP"} for p in ports],
            "cluster": None,
        },
    }


LIST = {
    "apiVersion": "skyflow.io/v1",
    "kind": "List",
    "items": [
        service("web", "NodePort", [80, 443], {"app.kubernetes.io/name": "web", "tier": "front"}),
        service("db", "ClusterIP", [5432], {}),
    ],
}

RENDERED = [
    ("{.kind}", "List"),
    ("{$.kind}", "List"),
    ("{@.kind}", "List"),
    ("kind is {.kind}!", "kind is List!"),
    ("{.items[*].metadata.name}", "web db"),
    ("{.items[0].metadata.name}", "web"),
    ("{.items[-1].metadata.name}", "db"),
    ("{.items[0:1].metadata.name}", "web"),
    ("{.items[*].spec.ports[*].port}", "80 443 5432"),
    ("{..port}", "80 443 5432"),
    ('{.items[?(@.spec.type=="NodePort")].metadata.name}', "web"),
    ("{.items[?(@.spec.type=='ClusterIP')].metadata.name}", "db"),
    ("{.items[?(@.spec.ports[0].port>100)].metadata.name}", "db"),
    ("{.items[?(@.metadata.labels.tier)].metadata.name}", "web"),
    ("{.items[0].metadata.labels.app\\.kubernetes\\.io/name}", "web"),
    ("{.items[0].metadata.labels['app.kubernetes.io/name']}", "web"),
    ("{.items[0].metadata.labels}", '{"app.kubernetes.io/name":"web","tier":"front"}'),
    ("{.items[1].spec.cluster}", "null"),
    ("{.items[*]['metadata', 'spec'].type}", "NodePort ClusterIP"),
    ("{.nothing.here}", ""),
    ('{range .items[*]}{.metadata.name}{"\\t"}{.spec.type}{"\\n"}{end}',
     "web\tNodePort\ndb\tClusterIP\n"),
    ("{range .items[*]}[{range .spec.ports[*]}{.port},{end}]{end}", "[80,443,][5432,]"),
    ("{ .kind }", "List"),
    ("{'a'}{\"\\u00e9\"}", "aé"),
    ("no actions at all", "no actions at all"),
]  # fmt: skip


@pytest.mark.parametrize(("template", "expected"), RENDERED)
def test_templates_print_what_kubectl_prints(template: str, expected: str) -> None:
    assert Template(template).render(LIST) == expected


BAD_TEMPLATES = [
    ("{.items[0", "unclosed action"),
    ("{}", "empty action"),
    ("{end}", "{end} without a {range}"),
    ("{range .items[*]}{.x}", "is not closed by {end}"),
    ("{range}{end}", "{range} needs a path"),
    ("{.items[}", "missing ']'"),
    ("{.a..}", "expected a name"),
    ("{items}", "unexpected 'i'"),
    ('{"\\q"}', "unknown escape"),
    ("{.items[?(@.spec.ports[*].port==80)]}", "non-singular query"),
    ("{.items[?(@.x==)]}", ".items[?(@.x==)]"),
]


@pytest.mark.parametrize(("template", "reason"), BAD_TEMPLATES)
def test_bad_templates_are_one_line_naming_the_template(template: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        Template(template)
    message = str(caught.value)
    assert message.startswith(f'invalid jsonpath template "{template}": ')
    assert reason in message
    assert "\n" not in message


@given(st.text(max_size=40))
def test_any_template_compiles_or_is_refused_with_invalid_input(text: str) -> None:
    try:
        template = Template(text)
    except InvalidInput:
        return
    template.render(LIST)  # and what compiles, runs


def test_values_from_the_log_cannot_reach_the_terminal_as_escapes() -> None:
    hostile = {"metadata": {"name": "x\x1b[31mred\nforged"}}
    assert Template("{.metadata.name}{'\\n'}").render(hostile) == "x\\x1b[31mred\\nforged\n"
    assert text_of({"a": "\x1b"}) == '{"a":"\\u001b"}'


@pytest.mark.parametrize(
    "expression", [".metadata.name", "{.metadata.name}", "metadata.name", "{metadata.name}"]
)
def test_sort_by_takes_kubectls_relaxed_paths(expression: str) -> None:
    assert relaxed_path(expression).find(LIST["items"][0]) == ["web"]


@pytest.mark.parametrize("expression", ["", "{.a}{.b}", "{{.a}}"])
def test_relaxed_paths_refuse_what_kubectl_refuses(expression: str) -> None:
    with pytest.raises(InvalidInput):
        relaxed_path(expression)


def test_sort_key_orders_as_kubectl() -> None:
    names = ["svc10", "svc2", "api", "svc1"]
    ordered = sorted(names, key=lambda n: sort_key([n]))
    assert ordered == ["api", "svc1", "svc2", "svc10"]  # natural order, not "svc10" < "svc2"
    assert sorted([[443], [], [80], [5432]], key=sort_key) == [[], [80], [443], [5432]]
    assert sort_key([False]) < sort_key([True])


def test_custom_columns_from_a_spec_and_from_a_file() -> None:
    spec = (
        "NAME:.metadata.name,PORT:{.spec.ports[0].port},PORTS:.spec.ports[*].port,"
        "TIER:.metadata.labels.tier"
    )
    columns = parse_columns(spec)
    assert [c.header for c in columns] == ["NAME", "PORT", "PORTS", "TIER"]
    web, db = LIST["items"]
    assert [c.cell(web) for c in columns] == ["web", "80", "80,443", "front"]
    assert [c.cell(db) for c in columns] == ["db", "5432", "5432", "<none>"]
    filtered = parse_columns("HTTP:.spec.ports[?(@.port==443)].targetPort,N:.metadata.name")
    assert [c.cell(web) for c in filtered] == ["443", "web"]  # a comma inside a filter is kept
    from_file = columns_from_file("cols.txt", "NAME   TYPE\n.metadata.name   {.spec.type}\n")
    assert [c.cell(db) for c in from_file] == ["db", "ClusterIP"]


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("", "no columns given"),
        ("NAME", "expected HEADER:PATH"),
        ("NAME:", "expected HEADER:PATH"),
        (":.metadata.name", "expected HEADER:PATH"),
        ("NAME:.items[", "missing ']'"),
    ],
)
def test_bad_custom_columns(spec: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_columns(spec)
    assert reason in str(caught.value) and str(caught.value).startswith("invalid custom-columns")


def test_bad_custom_columns_files() -> None:
    with pytest.raises(InvalidInput, match="a line of headers and a line of paths"):
        columns_from_file("f", "NAME\n")
    with pytest.raises(InvalidInput, match="2 headers but 1 paths"):
        columns_from_file("f", "NAME TYPE\n.metadata.name\n")


def test_paths_compile_once_and_evaluate_relative_to_the_object() -> None:
    path = compile_path(".spec.ports[0].port")
    assert [path.find(item) for item in LIST["items"]] == [[80], [5432]]
    assert compile_path("").find({"a": 1}) == [{"a": 1}]
