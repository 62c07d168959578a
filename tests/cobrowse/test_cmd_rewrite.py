"""``cobrowse rewrite``: the rewriter from the command line, importing only what it needs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cobrowse.cli import main

ARGS = ["--url", "https://shop.example/p", "--session", "k3j9x2ab7q"]
PAGE = b'<!DOCTYPE html><a href="https://shop.example/cart">c</a><img src="/rel.png">'


def test_rewrites_html_to_stdout(tmp_path: Path, capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    page = tmp_path / "page.html"
    page.write_bytes(PAGE)
    assert main(["rewrite", str(page), *ARGS, "--proxy-domain", "cobrowse.localhost"]) == 0
    out = capfdbinary.readouterr().out
    assert b'href="http://k3j9x2ab7qs-shop-example.cobrowse.localhost:8001/cart"' in out
    assert b'src="/rel.png"' in out and out.startswith(b"<!DOCTYPE html>")


def test_rewrites_css_by_suffix_and_by_type(
    tmp_path: Path, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    sheet = tmp_path / "site.css"
    sheet.write_bytes(b"a{b:url(https://shop.example/x.png)}")
    assert main(["rewrite", str(sheet), *ARGS, "--proxy-port", "9000"]) == 0
    assert capfdbinary.readouterr().out == b"a{b:url(http://k3j9x2ab7qs-shop-example.cobrowse.localhost:9000/x.png)}"
    other = tmp_path / "sheet.txt"
    other.write_bytes(b"a{b:url(https://shop.example/x.png)}")
    assert main(["rewrite", str(other), *ARGS, "--type", "css", "--proxy-scheme", "https"]) == 0
    assert b"https://k3j9x2ab7qs-shop-example.cobrowse.localhost:8001/x.png" in capfdbinary.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["rewrite", "/no/such/file.html", *ARGS], "cannot read /no/such/file.html"),
        (["rewrite", "PAGE", "--url", "ftp://shop.example/", "--session", "k3j9x2ab7q"], "cannot be proxied"),
        (["rewrite", "PAGE", "--url", "https://shop.example/", "--session", "Nope"], "invalid session id"),
        (["rewrite", "PAGE", *ARGS, "--proxy-domain", "a/b"], "invalid proxy domain"),
        (["rewrite", "PAGE", *ARGS, "--type", "js"], "invalid choice"),
        (["rewrite", "PAGE", "--session", "k3j9x2ab7q"], "required"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(
    argv: list[str], message: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "page.html"
    page.write_bytes(PAGE)
    argv = [str(page) if a == "PAGE" else a for a in argv]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse usage errors
        code = int(exc.code or 0)
    captured = capfd.readouterr()
    assert code == 2
    assert captured.out == ""
    assert message in captured.err and captured.err.count("\n") == 1


def test_unknown_kind_asks_for_type(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    blob = tmp_path / "data.bin"
    blob.write_bytes(b"\x89PNG\r\n\x1a\n")
    assert main(["rewrite", str(blob), *ARGS]) == 2
    assert "--type" in capfd.readouterr().err


def test_imports_neither_mitmproxy_nor_starlette(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_bytes(PAGE)
    code = (
        "import io, json, sys\n"
        "from cobrowse.cli import main\n"
        "sys.stdout = io.TextIOWrapper(io.BytesIO())\n"
        f"rc = main(['rewrite', {str(page)!r}, *{ARGS!r}])\n"
        "sys.stderr.write(json.dumps([rc, sorted(sys.modules)]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    rc, modules = json.loads(proc.stderr)
    assert rc == 0
    assert "rewriter.html" in modules  # the command did run the rewriter
    roots = {name.split(".")[0] for name in modules}
    assert not roots & {"mitmproxy", "starlette", "redis", "fakeredis", "uvicorn"}
