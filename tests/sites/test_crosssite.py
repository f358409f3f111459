"""The cross-site rule and the lease's wording without a server: which endpoints a
service resolves to when sites are in view (``registry.discovery.crosssite``), and what
the hub says of a site by its lease (``registry.sites.model.lease_warning``)."""

from __future__ import annotations

from events.service import Port, Service
from events.task import Task
from registry.discovery.crosssite import Answer, SiteTasks, choose, site_endpoints, site_order
from registry.discovery.endpoints import endpoints_for
from registry.sites.model import Policy, Site, lease_state, lease_warning

WEB = Service(
    namespace="shop", name="web", selector={"app": "web"}, ports=[Port(port=80, target_port=8080)]
)


def task(name: str, address: str, *, ready: bool = True, app: str = "web") -> Task:
    return Task(namespace="shop", name=name, labels={"app": app}, address=address, ready=ready)


def site(name: str, state: str, *tasks: Task, silent: float | None = 0.3) -> SiteTasks:
    assert state in ("live", "stale", "revoked")
    return SiteTasks(name, state, silent, tasks)  # type: ignore[arg-type]


def addresses(answer: Answer) -> list[str]:
    return [a.address for a in answer.endpoints.addresses if a.ready]


def test_local_endpoints_come_first() -> None:
    local = endpoints_for(WEB, [task("hub-1", "10.0.0.1")])
    sites = [site("east", "live", task("east-1", "10.1.0.1"))]
    answer = choose(local, sites)
    assert (answer.site, answer.state, addresses(answer)) == (None, "local", ["10.0.0.1"])


def test_no_ready_local_endpoint_falls_back_to_a_live_site_then_a_stale_one() -> None:
    local = endpoints_for(WEB, [task("hub-1", "10.0.0.1", ready=False)])
    sites = [
        site("alpha", "stale", task("alpha-1", "10.3.0.1"), silent=7.5),
        site("west", "live", task("west-1", "10.2.0.1")),
        site("east", "live", task("east-1", "10.1.0.1")),
    ]
    answer = choose(local, sites)
    # Live before stale (alpha is first by name but stale), then by name: east.
    assert (answer.site, answer.state, addresses(answer)) == ("east", "live", ["10.1.0.1"])
    assert answer.stale_s is None and not answer.stale
    only_stale = choose(local, [sites[0]])
    assert (only_stale.site, only_stale.stale, only_stale.stale_s) == ("alpha", True, 7.5)
    assert addresses(only_stale) == ["10.3.0.1"]


def test_a_site_without_ready_endpoints_for_the_service_is_passed_over() -> None:
    local = endpoints_for(WEB, [])
    sites = [
        site("east", "live", task("east-db", "10.1.0.9", app="db")),  # not web's
        site("north", "live", task("north-1", "10.4.0.1", ready=False)),
        site("west", "live", task("west-1", "10.2.0.1")),
    ]
    assert choose(local, sites).site == "west"


def test_revoked_sites_are_never_answered() -> None:
    local = endpoints_for(WEB, [])
    revoked = site("east", "revoked", task("east-1", "10.1.0.1"), silent=200.0)
    answer = choose(local, [revoked])
    assert (answer.site, answer.state, addresses(answer)) == (None, "local", [])
    assert site_order([revoked]) == []
    assert site_endpoints(local, revoked).addresses == ()


def test_the_order_is_live_then_stale_then_by_name() -> None:
    sites = [
        site("b", "stale"),
        site("c", "live"),
        site("a", "stale"),
        site("z", "revoked"),
        site("d", "live"),
    ]
    assert [s.site for s in site_order(sites)] == ["c", "d", "a", "b"]


def test_ready_means_ready_for_the_port_asked() -> None:
    two = Service(
        namespace="shop",
        name="web",
        selector={"app": "web"},
        ports=[Port(port=80, target_port="http"), Port(port=443, target_port="https")],
    )
    local = endpoints_for(
        two,
        [Task(namespace="shop", name="h", labels={"app": "web"}, address="10.0.0.1",
              ports={"http": 8080})],
    )  # fmt: skip
    east = SiteTasks(
        "east",
        "live",
        0.2,
        (
            Task(
                namespace="shop",
                name="e",
                labels={"app": "web"},
                address="10.1.0.1",
                ports={"http": 8080, "https": 8443},
            ),
        ),
    )
    assert choose(local, [east], port=80).site is None
    assert choose(local, [east], port=443).site == "east"


def test_the_lease_says_what_is_served() -> None:
    east = Site("east", "east", lease_s=2.0, policy=Policy(grace_s=3.0))
    assert lease_state(east, 1.0) == "live"
    assert lease_warning(east, "live", 1.0) is None
    assert lease_state(east, 2.5) == "stale"
    assert lease_warning(east, "stale", 2.5) == (
        "site east is stale: the hub last heard from it 2.5s ago (lease 2s); these are the "
        "endpoints it last reported (policy revoke-after 3s)"
    )
    assert lease_state(east, 3.0) == "revoked"
    assert lease_warning(east, "revoked", 3.0) == (
        "site east is revoked: the hub last heard from it 3.0s ago; its endpoints are not "
        "served (policy revoke-after 3s)"
    )
    assert lease_warning(east, "stale", None, now=False) == (
        "site east is stale: the hub last heard from it never; what it recorded since has "
        "not reached the hub"
    )
    kept = Site("ship", "ship", policy=Policy(grace_s=None))
    assert lease_state(kept, 86400.0) == "stale"  # keep-last-known: never revoked
