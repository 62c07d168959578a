"""HTTPS upstreams: verified by default (system CAs plus settings.upstream_ca_file), with the TLS
server name of the origin although the connection is pinned to the checked address."""

from __future__ import annotations

import datetime
import ssl
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import BaseRoute, Route

from tests.proxy.conftest import Harness, Sites, make_settings
from tests.proxy.sites import SiteServer


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def write_pki(directory: Path, ca_name: str) -> tuple[Path, Path, Path]:
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name(ca_name))
        .issuer_name(_name(ca_name))
        .public_key(ca_key.public_key()).serial_number(1).not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder().subject_name(_name("localhost")).issuer_name(ca.subject)
        .public_key(key.public_key()).serial_number(2).not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ))
    return ca_path, cert_path, key_path


@contextmanager
def serve_tls(
    tmp_path: Path, home: Callable[[Request], Awaitable[HTMLResponse]], ca_name: str = "cobrowse test CA",
    routes: Sequence[BaseRoute] = (),
) -> Iterator[tuple[int, Path]]:
    """An HTTPS site answering ``/`` with ``home`` (and ``routes``), under a certificate for
    ``localhost`` signed by a fresh CA: its port and the CA's file."""
    ca, cert, key = write_pki(tmp_path, ca_name)
    server = SiteServer(Starlette(routes=[Route("/", home), *routes]))
    server.server.config.ssl_certfile = str(cert)
    server.server.config.ssl_keyfile = str(key)
    server.server.config.load()
    server.start()
    try:
        yield server.port, ca
    finally:
        server.stop()


@pytest.fixture
def tls_site(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    async def home(request: Request) -> HTMLResponse:
        return HTMLResponse(f"<!doctype html><h1 id='title'>secure {request.headers['host']}</h1>")

    with serve_tls(tmp_path, home) as (port, ca):
        yield f"https://localhost:{port}", ca


def _fetch(harness: Harness, origin: str) -> tuple[int, str]:
    s = harness.open_session((origin,))
    r = harness.get(s, harness.host(s, origin), "/", credential=harness.credential(s))
    return r.status_code, r.text


@pytest.mark.parametrize(
    ("trust", "expected"),
    [("none", 502), ("ca_file", 200), ("insecure", 200)],
)
def test_https_upstream_is_verified(
    sites: Sites, tls_site: tuple[str, Path], redis_url: str, namespace: str, trust: str, expected: int
) -> None:
    origin, ca = tls_site
    extra: dict[str, object] = {"dev_allow_origins": (origin,)}
    if trust == "ca_file":
        extra["upstream_ca_file"] = str(ca)
    if trust == "insecure":
        extra["insecure_upstream"] = True
    harness = Harness(make_settings(sites, **extra), redis_url, namespace)
    try:
        status, text = _fetch(harness, origin)
        assert status == expected
        if expected == 200:
            # Host (and the verified TLS name) is the origin's, though the socket goes to 127.0.0.1
            assert f"secure {origin.removeprefix('https://')}" in text
        else:
            assert "Site unreachable" in text
    finally:
        harness.close()



def _system_store(monkeypatch: pytest.MonkeyPatch, cafile: Path) -> None:
    """The machine's CA store, as the proxy reads it, is ``cafile``."""
    real = ssl.get_default_verify_paths()
    monkeypatch.setattr(ssl, "get_default_verify_paths", lambda: real._replace(cafile=str(cafile)))


@pytest.mark.parametrize("extra_file", [False, True], ids=["system-only", "with-extra-file"])
def test_the_system_ca_store_is_trusted_with_or_without_an_extra_ca_file(
    sites: Sites, tmp_path: Path, redis_url: str, namespace: str, monkeypatch: pytest.MonkeyPatch,
    extra_file: bool,
) -> None:
    async def home(request: Request) -> HTMLResponse:
        return HTMLResponse(f"<h1>secure {request.headers['host']}</h1>")

    (tmp_path / "system").mkdir()
    (tmp_path / "extra").mkdir()
    with serve_tls(tmp_path / "system", home, "system test CA") as (system_port, system_ca), \
            serve_tls(tmp_path / "extra", home, "extra test CA") as (extra_port, extra_ca):
        _system_store(monkeypatch, system_ca)
        by_system, by_extra = f"https://localhost:{system_port}", f"https://localhost:{extra_port}"
        extra: dict[str, object] = {"dev_allow_origins": (by_system, by_extra)}
        if extra_file:
            extra["upstream_ca_file"] = str(extra_ca)
        harness = Harness(make_settings(sites, **extra), redis_url, namespace)
        try:
            s = harness.open_session((by_system, by_extra))
            credential = harness.credential(s)
            expected = {by_system: 200, by_extra: 200 if extra_file else 502}
            for origin, status in expected.items():
                r = harness.get(s, harness.host(s, origin), "/", credential=credential)
                assert r.status_code == status, origin
        finally:
            harness.close()
