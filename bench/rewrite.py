"""Benchmark of the HTML rewriter against bare lxml parse+serialize of the same bytes (run by hand).

    python3 bench/rewrite.py [--repeat 7] [FILE.html ...]

Pages: a generated shop-like page (~2 MB, one absolute URL per ~300 bytes, srcset, inline
styles, scripts) and HTML files that ship with installed software: CPython's
``idlelib/help.html`` (Sphinx output) and, when present, Debian's python-policy and the Rust
book's ``print.html`` (rustup docs). For each page the two timings are interleaved and the best
of ``--repeat`` runs of process CPU time is kept (the machine is shared); the parse fix-ups
(``rewriter/html_parity.py``, part of the rewrite) are timed alone beside them. Peak memory is measured
two ways, as multiples of the page size: ``tracemalloc``'s peak over one rewrite (Python
allocations only), and the growth of the resident set's high-water mark (``VmHWM``) over one
rewrite in a fresh child process, which also counts libxml2's tree and buffers; the same growth
for bare lxml parse+serialize is given for comparison.
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
import sysconfig
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from lxml import etree

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rewriter.html import rewrite_html  # noqa: E402
from rewriter.html_parity import browser_parse_fixups  # noqa: E402
from rewriter.urls import ProxyConfig, UrlMapper  # noqa: E402

SESSION = "k3j9x2ab7q"
GENERATED = "generated shop page"
INJECT = '<script src="/__cobrowse/runtime.js"></script><script>window.__cobrowse_config={}</script>'
SHIPPED = [
    Path(sysconfig.get_paths()["stdlib"]) / "idlelib" / "help.html",
    Path("/usr/share/doc/python3/python-policy.html"),
    Path.home() / ".rustup/toolchains/stable-x86_64-unknown-linux-gnu/share/doc/rust/html/book/print.html",
]


def generated_page(target_bytes: int = 2 * 2**20) -> bytes:
    head = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Shop</title>'
        '<link rel="stylesheet" href="https://cdn.shop.example/css/site.css">'
        "<style>.hero{background:url(https://img.shop.example/hero.jpg)}</style>"
        "<script>window.dataLayer=[];</script></head><body><ul class=products>"
    )
    rows = []
    for i in range(target_bytes // 600 + 1):  # every URL distinct: no cache helps
        rows.append(
            f'<li class="product" data-sku="{i}"><a href="https://www.shop.example/p/{i}" class="card">'
            f'<img src="https://img.shop.example/p/{i}.jpg"'
            f' srcset="/img/p/{i}-400.jpg 400w, /img/p/{i}-800.jpg 800w"'
            f' alt="Product {i}" loading="lazy" width="400" height="300"></a>'
            f'<h3><a href="/p/{i}">Running shoe model {i}</a></h3><p class="desc">Light, breathable, '
            f"made for long runs on road and trail. Available in {i % 7 + 3} colours.</p>"
            f'<span class="price" style="color:#c00">€{50 + i}</span><button type="button" '
            f'onclick="cart.add({i})">Add to cart</button></li>\n'
        )
    body = head + "".join(rows) + "</ul></body></html>"
    return body.encode("utf-8")


def lxml_round_trip(body: bytes) -> bytes:
    parser = etree.HTMLParser(encoding="utf-8", huge_tree=True)
    root = etree.fromstring(body, parser)
    return etree.tostring(root.getroottree(), encoding="utf-8", method="html")


def best_of(repeat: int, fns: list[Callable[[], object]]) -> list[float]:
    best = [float("inf")] * len(fns)
    for _ in range(repeat):
        for index, fn in enumerate(fns):
            gc.collect()
            start = time.process_time()
            fn()
            best[index] = min(best[index], time.process_time() - start)
    return best


def measure(name: str, body: bytes, repeat: int) -> dict[str, float | str]:
    mapper = UrlMapper(SESSION, ProxyConfig())

    def ours() -> bytes:
        return rewrite_html(body, url="https://www.shop.example/c/running", mapper=mapper, inject=INJECT)

    t_lxml, t_ours, t_fixups = best_of(
        repeat, [lambda: lxml_round_trip(body), ours, lambda: browser_parse_fixups(body)]
    )
    ours()  # warm: regexes compiled, caches filled
    gc.collect()
    tracemalloc.start()
    ours()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    mb = len(body) / 2**20
    rss_ours, rss_lxml = (_rss_growth(name, what) / len(body) for what in ("ours", "lxml"))
    return {
        "page": name,
        "size_mb": mb,
        "lxml_mbps": mb / t_lxml,
        "ours_mbps": mb / t_ours,
        "ratio": t_lxml / t_ours,
        "fixups_pct": 100 * t_fixups / t_ours,
        "peak_x": peak / len(body),
        "rss_x": rss_ours,
        "rss_lxml_x": rss_lxml,
    }


def _page_bytes(name: str) -> bytes:
    return (
        generated_page() if name == GENERATED else Path(name.replace("~", str(Path.home()), 1)).read_bytes()
    )


def _rss_growth(name: str, what: str) -> int:
    """Bytes by which one rewrite (or lxml round trip) of page ``name`` raises a fresh process's peak RSS."""
    out = subprocess.run(
        [sys.executable, __file__, "--rss-child", what, name], capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip())


def _rss_child(what: str, name: str) -> int:
    body = _page_bytes(name)
    mapper = UrlMapper(SESSION, ProxyConfig())
    run: Callable[[bytes], object] = (
        lxml_round_trip
        if what == "lxml"
        else (
            lambda data: rewrite_html(
                data, url="https://www.shop.example/c/running", mapper=mapper, inject=INJECT
            )
        )
    )
    run(b"<!DOCTYPE html><p><a href='https://a.example/'>warm</a></p>")  # imports, regexes, caches
    gc.collect()
    before = _peak_rss()
    run(body)
    print(_peak_rss() - before)
    return 0


def _peak_rss() -> int:
    """This process's resident-set high-water mark in bytes (Linux ``VmHWM``: unlike ``ru_maxrss``,
    it starts afresh at exec and does not carry the parent's peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path, help="more HTML files to measure")
    parser.add_argument("--repeat", type=int, default=7, help="runs per measurement (best kept)")
    parser.add_argument("--rss-child", nargs=2, metavar=("WHAT", "PAGE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rss_child:
        return _rss_child(*args.rss_child)
    pages: list[tuple[str, bytes]] = [(GENERATED, generated_page())]
    for path in [*SHIPPED, *args.files]:
        if path.is_file():
            pages.append((str(path).replace(str(Path.home()), "~"), path.read_bytes()))
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"nproc={os.cpu_count()} load={os.getloadavg()[0]:.1f} date={date}")
    print(
        "| page | size (MB) | lxml parse+serialize (MB/s) | rewrite_html (MB/s) | ratio "
        "| parse fix-ups (% of rewrite) | Python peak (x page) | RSS growth (x page) "
        "| lxml RSS growth (x page) |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, body in pages:
        r = measure(name, body, args.repeat)
        print(
            f"| {r['page']} | {r['size_mb']:.2f} | {r['lxml_mbps']:.1f} | {r['ours_mbps']:.1f} "
            f"| {r['ratio']:.2f} | {r['fixups_pct']:.1f} | {r['peak_x']:.2f} | {r['rss_x']:.2f} "
            f"| {r['rss_lxml_x']:.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
