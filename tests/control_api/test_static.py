"""The agent UI's static files served by the API, and CORS/caching headers of the banner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cb_api_helpers import TestClient, make_settings

from control_api import create_app, static
from control_api.store import Store


@pytest.fixture
def ui_dir(tmp_path: Path) -> Path:
    (tmp_path / "console.html").write_text("<title>console</title>")
    (tmp_path / "vb.html").write_text("<title>vb</title>")
    (tmp_path / "banner.js").write_text("/* banner */")
    (tmp_path / "ui.css").write_text("body{}")
    return tmp_path


@pytest.fixture
def client(ui_dir: Path) -> TestClient:
    app = create_app(make_settings(), store=Store.connect(None, "static:"), sweep=False, ui_dir=ui_dir)
    return TestClient(app)


def test_pages_and_files(client: TestClient) -> None:
    r = client.get("/console")
    assert r.status_code == 200 and "console" in r.text and r.headers["content-type"].startswith("text/html")
    assert "vb" in client.get("/vb").text
    r = client.get("/banner.js")
    assert r.status_code == 200 and "javascript" in r.headers["content-type"]
    assert r.headers["cross-origin-resource-policy"] == "cross-origin"
    assert client.get("/static/ui.css").text == "body{}"


def test_missing_and_escaping_paths_are_json_404(client: TestClient, ui_dir: Path) -> None:
    (ui_dir / "vb.html").unlink()
    for path in ("/vb", "/static/missing.js", "/static/../../etc/passwd", "/static/%2e%2e/%2e%2e/etc/passwd"):
        r = client.get(path)
        assert r.status_code == 404, path
        assert r.json()["error"] in ("file_not_found", "not_found"), path


def test_real_ui_directory_is_served_when_present() -> None:
    client = TestClient(create_app(make_settings(), store=Store.connect(None, "static2:"), sweep=False))
    for path, name in (("/console", "console.html"), ("/vb", "vb.html"), ("/banner.js", "banner.js")):
        expected = 200 if (static.STATIC_DIR / name).is_file() else 404
        assert client.get(path).status_code == expected


def test_the_console_and_the_view_name_an_icon_that_is_served() -> None:
    """Without an icon the browser asked for /favicon.ico: a 404 in every agent's console."""
    app = create_app(make_settings(), store=Store.connect(None, "static:"), sweep=False)
    client = TestClient(app)
    for page in ("/console", "/vb"):
        assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in client.get(page).text
    icon = client.get("/static/favicon.svg")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")


def _policy(response: Any) -> dict[str, str]:
    directives = (d.strip().split(" ", 1) for d in response.headers["content-security-policy"].split(";"))
    return {d[0]: d[1] if len(d) > 1 else "" for d in directives}


def test_the_console_and_the_view_load_only_their_own_parts_and_no_page_frames_them(
    client: TestClient,
) -> None:
    """Framed by another site's page, the console's buttons could be clicked through a decoy
    (click-jacking): co-browse someone, end a session."""
    console = _policy(client.get("/console"))
    view = _policy(client.get("/vb"))
    for policy in (console, view):
        assert policy["frame-ancestors"] == "'none'"
        assert policy["script-src"] == "'self'" and policy["object-src"] == "'none'"
        assert policy["connect-src"] == "'self'" and policy["base-uri"] == "'none'"
    assert console["frame-src"] == "'none'"
    assert view["frame-src"] == "http://*.cobrowse.localhost:8001"  # the session's proxy origins
    assert client.get("/vb").headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in client.get("/banner.js").headers  # a script for other sites


def test_a_helpdesk_the_settings_name_may_frame_them(ui_dir: Path) -> None:
    settings = make_settings(
        console_frame_ancestors=("https://helpdesk.example", "https://*.crm.example"),
        proxy_domain="proxy.example", proxy_public_scheme="https", proxy_public_port=443,
    )
    app = create_app(settings, store=Store.connect(None, "static3:"), sweep=False, ui_dir=ui_dir)
    client = TestClient(app)
    for page in ("/console", "/vb"):
        assert _policy(client.get(page))["frame-ancestors"] == "https://helpdesk.example https://*.crm.example"
    assert _policy(client.get("/vb"))["frame-src"] == "https://*.proxy.example:443"
