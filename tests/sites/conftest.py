"""The set-up most sites tests share: a hub, east (its leaf link cuttable, a 2 s lease and
``revoke-after 6s``, so a cut shows stale then revoked within a test) and west, one per
test module; and a recorder at each site for the tests that read the sites' histories."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.sitesetup import EAST_GRACE_S, EAST_LEASE_S, Running, recording, sites_ready


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    east = ("--lease", f"{EAST_LEASE_S:g}s", "--policy", f"revoke-after {EAST_GRACE_S:g}s")
    with sites_ready(tmp_path_factory.mktemp("sites"), *east) as up:
        yield up


@pytest.fixture
async def recorders(sites: Running) -> AsyncIterator[None]:
    """A recorder at each site: the history the hub's copies are read from."""
    async with recording(sites.east, sites.west):
        yield
