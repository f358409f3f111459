"""``get -l``: kubectl's label selector grammar and meaning, without a server."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cli.selector import Operator, Requirement, Selector, parse_label_selector
from registry.errors import InvalidInput

LABELS = {"app": "web", "tier": "front", "env": "prod", "example.com/team": "a-1", "empty": ""}

CASES = [
    ("", True),
    ("app=web", True),
    ("app==web", True),
    ("app=api", False),
    ("app!=api", True),
    ("app!=web", False),
    ("missing!=x", True),  # kubectl: != also matches a service without the label
    ("app", True),
    ("missing", False),
    ("!missing", True),
    ("!app", False),
    ("app=web,tier=front", True),
    ("app=web,tier=back", False),
    ("app in (web,api)", True),
    ("app in (api)", False),
    ("app notin (api,db)", True),
    ("app notin (web)", False),
    ("missing notin (x)", True),
    ("missing in (x)", False),
    ("example.com/team=a-1", True),
    ("empty=", True),
    ("empty", True),
    ("app=", False),
    (" app = web , ! missing ", True),
    ("env in (prod, staging),tier!=back", True),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_selectors_mean_what_they_mean_in_kubectl(text: str, expected: bool) -> None:
    assert parse_label_selector(text).matches(LABELS) is expected


BAD = [
    ("a=b=c", "expected ','"),
    ("!", "expected a label key"),
    ("=web", "expected a label key"),
    ("app in ()", "needs at least one value"),
    ("app in (a", "expected ',' or ')'"),
    ("app in a", "expected '('"),
    ("app web", "expected =, ==, !=, in or notin"),
    ("app=web,", "expected a label key"),
    (",app", "expected a label key"),
    ("bad_key_=x", "label key"),
    ("app=-web", "label value"),
    ("Not/Dns/x=1", "label key"),
    ("!app=web", "expected ','"),
]


@pytest.mark.parametrize(("text", "reason"), BAD)
def test_bad_selectors_name_the_value_and_the_reason(text: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_label_selector(text)
    message = str(caught.value)
    assert message.startswith(f'invalid label selector "{text}": ')
    assert reason in message
    assert "\n" not in message


keys = st.sampled_from(["app", "tier", "env", "example.com/team", "x"])
values = st.sampled_from(["web", "api", "front", "", "a-1", "v.2"])
label_sets = st.dictionaries(keys, values, max_size=5)


@st.composite
def requirements(draw: st.DrawFn) -> Requirement:
    operator = draw(st.sampled_from(list(Operator)))
    key = draw(keys)
    if operator in (Operator.EXISTS, Operator.NOT_EXISTS):
        return Requirement(key, operator)
    if operator in (Operator.EQUALS, Operator.NOT_EQUALS):
        return Requirement(key, operator, frozenset([draw(values)]))
    chosen = draw(st.frozensets(values.filter(bool), min_size=1, max_size=3))
    return Requirement(key, operator, chosen)


selectors = st.lists(requirements(), max_size=4).map(lambda rs: Selector(tuple(rs)))


@given(selectors)
def test_a_selector_reads_back_as_itself(selector: Selector) -> None:
    assert parse_label_selector(str(selector)) == selector


@given(selectors, label_sets)
def test_commas_mean_and(selector: Selector, labels: dict[str, str]) -> None:
    each = [parse_label_selector(str(r)).matches(labels) for r in selector.requirements]
    assert parse_label_selector(str(selector)).matches(labels) is all(each)


@given(keys, values, st.frozensets(values.filter(bool), min_size=1, max_size=3), label_sets)
def test_negations_are_complements(
    key: str, value: str, chosen: frozenset[str], labels: dict[str, str]
) -> None:
    def match(text: str) -> bool:
        return parse_label_selector(text).matches(labels)

    members = ",".join(sorted(chosen))
    assert match(f"{key}!={value}") is not match(f"{key}={value}")
    assert match(f"{key} notin ({members})") is not match(f"{key} in ({members})")
    assert match(f"!{key}") is not match(key)
    assert match(f"{key}={value}") is (labels.get(key) == value)
    assert match(f"{key} in ({members})") is (labels.get(key) in chosen)


@given(st.text(max_size=30))
def test_any_text_is_a_selector_or_one_line_error(text: str) -> None:
    try:
        selector = parse_label_selector(text)
    except InvalidInput as exc:
        message = str(exc).replace(text, "")
    else:
        assert parse_label_selector(str(selector)) == selector
        return
    assert "\n" not in message
