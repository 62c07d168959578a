"""The bundled sample shop of ``cobrowse demo``: a few server-rendered pages on its own origin.

It exercises what co-browsing must survive: images, a fetch() search, a cart kept in a cookie,
a login form (password input, always masked), an account page that needs the HttpOnly session
cookie (never handed to the agent, so the agent's view of it is redirected to the login page),
a checkout with a masked card field, and a page that routes with ``history.pushState``. Every
page embeds the visitor banner script.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

SITE_DIR = Path(__file__).with_name("demo_site")

# The account policy of the demo masks this selector (the checkout's card number).
MASKED_SELECTORS = (".card-number",)


@dataclass(frozen=True)
class Product:
    id: str
    name: str
    price_cents: int
    colour: str
    shape: str  # circle | square | triangle
    blurb: str

    @property
    def price(self) -> str:
        return f"${self.price_cents / 100:.2f}"


PRODUCTS: tuple[Product, ...] = (
    Product("red-mug", "Red mug", 1200, "#d64545", "circle", "A sturdy mug for long support calls."),
    Product("blue-notebook", "Blue notebook", 800, "#3569c9", "square", "Dotted pages, lies flat."),
    Product("green-plant", "Green plant", 2500, "#2f9e58", "triangle", "Survives any office."),
    Product("yellow-lamp", "Yellow lamp", 4200, "#e0b530", "circle", "Warm light, dimmable."),
    Product("purple-headset", "Purple headset", 6900, "#7b4fc9", "square", "Noise cancelling."),
    Product("orange-chair", "Orange chair", 15900, "#e07a30", "triangle", "Sit well, help well."),
)
BY_ID = {p.id: p for p in PRODUCTS}


HELP = [
    (f"{topic}?", f"{answer} (answer {n} of the help centre)")
    for n, (topic, answer) in enumerate(
        [
            ("How long does delivery take", "Two to four working days in the country."),
            ("Can I return an item", "Within 30 days, in its box, with the receipt."),
            ("Which cards do you take", "Every major card; the number is masked when shared."),
            ("Can I change my order", "Until it ships: write to us with the order number."),
            ("Do you ship abroad", "To most of Europe, in five to eight working days."),
            ("How do I reset my password", "Use the link on the sign-in page."),
            ("Is my cart kept", "For 30 days on this browser."),
            ("Can I pay later", "Not yet: every order is paid when it is placed."),
        ]
        * 3,
        1,
    )
]


@dataclass(frozen=True)
class ShopConfig:
    """Where the banner comes from and which account it belongs to (empty: no banner)."""

    banner_src: str = ""
    site_key: str = ""


def product_svg(product: Product) -> str:
    """A small generated picture: a shape in the product's colour (no downloaded assets)."""
    shapes = {
        "circle": '<circle cx="100" cy="75" r="48"/>',
        "square": '<rect x="55" y="30" width="90" height="90" rx="10"/>',
        "triangle": '<polygon points="100,25 152,122 48,122"/>',
    }
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="200" height="150" viewBox="0 0 200 150">'
        '<rect width="200" height="150" fill="#eef1f7"/>'
        f'<g fill="{product.colour}">{shapes[product.shape]}</g>'
        f'<text x="100" y="142" font-family="sans-serif" font-size="12" text-anchor="middle" '
        f'fill="#445">{html.escape(product.name)}</text></svg>'
    )


async def _form(request: Request) -> dict[str, str]:
    """An urlencoded form body (the shop posts nothing else; no multipart dependency needed)."""
    body = (await request.body()).decode("utf-8", "replace")
    return {key: values[0] for key, values in parse_qs(body).items()}


def _local_path(target: str) -> str:
    """``target`` when it is a path of this shop, else ``/`` (no open redirect after sign-in)."""
    if not target.startswith("/") or target.startswith("//") or any(c in target for c in "\\\t\r\n"):
        return "/"
    return target


def _cart(request: Request) -> list[str]:
    raw = unquote(request.cookies.get("cart", ""))
    return [item for item in raw.split(",") if item in BY_ID]


def _page(config: ShopConfig, request: Request, title: str, body: str, scripts: tuple[str, ...] = ()) -> str:
    user = unquote(request.cookies.get("shop_user", ""))
    account = f'<a href="/account" id="account-link">Hi, {html.escape(user)}</a>' if user else (
        '<a href="/login">Sign in</a>'
    )
    banner = ""
    if config.banner_src:
        banner = (
            f'<script src="{html.escape(config.banner_src)}" '
            f'data-site-key="{html.escape(config.site_key)}" async></script>'
        )
    extra = "".join(f'<script src="/static/{name}" defer></script>' for name in scripts)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} - Demo Shop</title>
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/shop.css">{extra}{banner}</head>
<body><header class="site"><a class="brand" href="/">Demo Shop</a>
<nav><a href="/">Products</a><a href="/search">Search</a><a href="/tour">Tour</a><a href="/help">Help</a>
<a href="/cart" id="cart-link">Cart ({len(_cart(request))})</a><a href="/checkout">Checkout</a></nav>
<span class="account">{account}</span></header>
<main>{body}</main></body></html>"""


def _html(config: ShopConfig, request: Request, title: str, body: str, *scripts: str) -> HTMLResponse:
    return HTMLResponse(_page(config, request, title, body, scripts))


def create_shop_app(config: ShopConfig) -> Starlette:
    """The shop as an ASGI app; run it with uvicorn on a loopback port."""

    async def index(request: Request) -> Response:
        items = "".join(
            f'<li class="product" id="p-{p.id}"><a href="/product/{p.id}">'
            f'<img src="/img/{p.id}.svg" alt="{html.escape(p.name)}" width="200" height="150"></a>'
            f'<h2><a href="/product/{p.id}">{html.escape(p.name)}</a></h2>'
            f'<p class="price">{p.price}</p>'
            f'<form class="inline" method="post" action="/cart/add">'
            f'<input type="hidden" name="id" value="{p.id}"><button type="submit">Add to cart</button>'
            f"</form></li>"
            for p in PRODUCTS
        )
        body = (
            "<h1>Products</h1><p class='note'>Everything here is generated locally.</p>"
            f'<ul class="products">{items}</ul>'
            '<section class="tall" id="more"><h2>More about the shop</h2>'
            "<p>A long section so that there is something to scroll.</p></section>"
            '<section id="footer-info"><h2>Delivery</h2><p>Free delivery on every order.</p></section>'
        )
        return _html(config, request, "Products", body)

    async def product(request: Request) -> Response:
        p = BY_ID.get(request.path_params["pid"])
        if p is None:
            return _html(config, request, "Not found", "<h1>No such product</h1>")
        body = (
            f'<h1>{html.escape(p.name)}</h1><img src="/img/{p.id}.svg" alt="{html.escape(p.name)}" '
            f'width="400" height="300"><p>{html.escape(p.blurb)}</p><p class="price">{p.price}</p>'
            f'<form method="post" action="/cart/add"><input type="hidden" name="id" value="{p.id}">'
            '<label for="qty">Quantity</label><select id="qty" name="qty">'
            '<option>1</option><option>2</option><option>3</option></select>'
            '<p><button type="submit">Add to cart</button></p></form>'
            '<label for="question">A question for us?</label>'
            '<textarea id="question" name="question" rows="3"></textarea>'
        )
        return _html(config, request, p.name, body)

    async def image(request: Request) -> Response:
        p = BY_ID.get(request.path_params["pid"])
        if p is None:
            return Response("not found", status_code=404, media_type="text/plain")
        return Response(product_svg(p), media_type="image/svg+xml", headers={"Cache-Control": "max-age=3600"})

    async def search_page(request: Request) -> Response:
        body = (
            '<h1>Search</h1><form id="search-form" role="search">'
            '<label for="q">Find a product</label>'
            '<input type="search" id="q" name="q" autocomplete="off">'
            ' <button type="submit">Search</button></form>'
            '<p id="count" class="note"></p><ul id="results"></ul>'
        )
        return _html(config, request, "Search", body, "search.js")

    async def search_api(request: Request) -> Response:
        q = request.query_params.get("q", "").strip().lower()
        found = [
            {"id": p.id, "name": p.name, "price": p.price}
            for p in PRODUCTS
            if q in p.name.lower() or q in p.blurb.lower()
        ]
        return JSONResponse({"query": q, "results": found})

    async def cart_page(request: Request) -> Response:
        items = _cart(request)
        if not items:
            rows = '<tr><td colspan="2">Your cart is empty.</td></tr>'
        else:
            rows = "".join(
                f"<tr><td>{html.escape(BY_ID[i].name)}</td><td>{BY_ID[i].price}</td></tr>" for i in items
            )
        total = sum(BY_ID[i].price_cents for i in items) / 100
        body = (
            f'<h1>Cart</h1><table class="cart" id="cart"><tr><th>Item</th><th>Price</th></tr>{rows}'
            f'<tr><th>Total</th><th id="total">${total:.2f}</th></tr></table>'
            '<form method="post" action="/cart/clear"><p><button type="submit">Empty cart</button></p></form>'
            '<p><a class="button" href="/checkout">Check out</a></p>'
        )
        return _html(config, request, "Cart", body)

    async def cart_add(request: Request) -> Response:
        form = await _form(request)
        items = _cart(request)
        pid = str(form.get("id", ""))
        if pid in BY_ID:
            items.append(pid)
        response = RedirectResponse("/cart", status_code=303)
        # Not HttpOnly on purpose: the banner may hand it to the co-browsing session (seed_cookies).
        response.set_cookie("cart", quote(",".join(items)), path="/", samesite="lax")
        return response

    async def cart_clear(request: Request) -> Response:
        response = RedirectResponse("/cart", status_code=303)
        response.delete_cookie("cart", path="/")
        return response

    async def login_page(request: Request) -> Response:
        back = _local_path(request.query_params.get("next", ""))
        body = (
            '<h1>Sign in</h1><form method="post" action="/login" id="login-form">'
            f'<input type="hidden" name="next" value="{html.escape(back)}">'
            '<label for="email">Email</label>'
            '<input type="email" id="email" name="email" autocomplete="username">'
            '<label for="password">Password</label>'
            '<input type="password" id="password" name="password" autocomplete="current-password">'
            '<p><button type="submit">Sign in</button></p></form>'
        )
        return _html(config, request, "Sign in", body)

    async def login(request: Request) -> Response:
        form = await _form(request)
        email = str(form.get("email", "")).strip() or "guest"
        response = RedirectResponse(_local_path(form.get("next", "")), status_code=303)
        response.set_cookie("shop_user", quote(email), path="/", samesite="lax")
        response.set_cookie("shop_session", "s-" + quote(email), path="/", httponly=True, samesite="lax")
        return response

    async def account(request: Request) -> Response:
        # The session cookie is HttpOnly: a co-browsing agent never gets it, so this page sends
        # the agent's view to the login page while the visitor sees their account.
        if not request.cookies.get("shop_session"):
            return RedirectResponse("/login?next=/account", status_code=303)
        user = unquote(request.cookies.get("shop_user", "")) or "guest"
        body = (
            f'<h1>Your account</h1><p id="signed-in">Signed in as {html.escape(user)}.</p>'
            f"<p>Items in your cart: {len(_cart(request))}.</p>"
        )
        return _html(config, request, "Your account", body)

    async def checkout(request: Request) -> Response:
        body = (
            '<h1>Checkout</h1><form id="checkout-form" onsubmit="return false">'
            '<label for="name">Name on the order</label><input type="text" id="name" name="name">'
            '<label for="address">Delivery address</label>'
            '<textarea id="address" name="address" rows="2"></textarea>'
            '<fieldset id="delivery"><legend>Delivery</legend>'
            '<label><input type="radio" name="delivery" id="standard" value="standard"> Standard</label>'
            '<label><input type="radio" name="delivery" id="express" value="express"> Express</label>'
            "</fieldset>"
            '<label><input type="checkbox" id="gift" name="gift"> Gift wrap</label>'
            '<label for="card">Card number</label>'
            '<input type="text" id="card" name="card" class="card-number" autocomplete="cc-number">'
            '<p class="note">Your card number is masked: it never reaches a support agent.</p>'
            '<p><button type="submit">Place order</button></p></form>'
        )
        return _html(config, request, "Checkout", body)

    async def tour(request: Request) -> Response:
        links = "".join(f'<a href="/tour/{n}" data-step="{n}">Step {n}</a> ' for n in (1, 2, 3))
        body = (
            f'<h1>Tour</h1><p id="steps">{links}</p>'
            '<div class="step"><h2 id="step-title"></h2><p id="step-body"></p></div>'
        )
        return _html(config, request, "Tour", body, "tour.js")

    async def help_page(request: Request) -> Response:
        # answers in a panel that scrolls on its own, as help centres and dashboards do
        answers = "".join(
            f'<section class="answer" id="q{n}"><h2>{html.escape(q)}</h2><p>{html.escape(a)}</p></section>'
            for n, (q, a) in enumerate(HELP, 1)
        )
        body = f'<h1>Help</h1><div class="panel" id="answers" tabindex="0">{answers}</div>'
        return _html(config, request, "Help", body)

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True, "products": len(PRODUCTS)})

    routes = [
        Route("/", index),
        Route("/product/{pid}", product),
        Route("/img/{pid}.svg", image),
        Route("/search", search_page),
        Route("/api/search", search_api),
        Route("/cart", cart_page),
        Route("/cart/add", cart_add, methods=["POST"]),
        Route("/cart/clear", cart_clear, methods=["POST"]),
        Route("/login", login_page),
        Route("/login", login, methods=["POST"]),
        Route("/account", account),
        Route("/checkout", checkout),
        Route("/help", help_page),
        Route("/tour", tour),
        Route("/tour/{step}", tour),
        Route("/healthz", health),
        Mount("/static", app=StaticFiles(directory=str(SITE_DIR)), name="static"),
    ]
    return Starlette(routes=routes)
