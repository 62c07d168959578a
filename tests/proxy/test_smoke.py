from __future__ import annotations

from tests.proxy.conftest import Harness, Sites


def test_fetches_through_proxy(harness: Harness, sites: Sites) -> None:
    s = harness.open_session((sites.shop.origin, sites.cdn.origin))
    cred = harness.credential(s)
    r = harness.get(s, harness.host(s, sites.shop.origin), "/api/items", credential=cred)
    print(r.status_code, r.headers, r.text[:500])
    assert r.status_code == 200
