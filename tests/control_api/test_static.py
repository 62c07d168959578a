"""The agent UI's static files served by the API, and CORS/caching headers of the banner."""

from __future__ import annotations

from pathlib import Path

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
