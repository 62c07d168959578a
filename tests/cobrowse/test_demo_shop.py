"""The bundled sample shop: pages, generated images, fetch search, cookie cart, login, banner tag."""

from __future__ import annotations

import httpx

from cobrowse.demo_shop import PRODUCTS, ShopConfig, create_shop_app


def client(config: ShopConfig | None = None) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_shop_app(config or ShopConfig()))
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8002")


async def test_every_page_embeds_the_banner_with_the_site_key() -> None:
    c = client(ShopConfig(banner_src="http://cobrowse.localhost:9000/banner.js", site_key="pk_abc"))
    paths = (
        "/", "/search", "/cart", "/login", "/login?next=/account", "/checkout", "/help", "/tour", "/tour/2",
        f"/product/{PRODUCTS[0].id}",
    )
    tag = '<script src="http://cobrowse.localhost:9000/banner.js" data-site-key="pk_abc" async>'
    for path in paths:
        page = await c.get(path)
        assert page.status_code == 200, path
        assert tag in page.text


async def test_no_banner_when_not_configured() -> None:
    assert "data-site-key" not in (await client().get("/")).text


async def test_product_list_links_generated_svg_images() -> None:
    c = client()
    page = (await c.get("/")).text
    for p in PRODUCTS:
        assert f'src="/img/{p.id}.svg"' in page
        image = await c.get(f"/img/{p.id}.svg")
        assert image.headers["content-type"].startswith("image/svg+xml")
        assert p.colour in image.text
    assert (await c.get("/img/nothing.svg")).status_code == 404


async def test_search_api_filters_products() -> None:
    data = (await client().get("/api/search", params={"q": "MUG"})).json()
    assert [r["id"] for r in data["results"]] == ["red-mug"]
    assert (await client().get("/api/search", params={"q": "zzz"})).json()["results"] == []


async def test_cart_lives_in_a_readable_cookie() -> None:
    c = client()
    answer = await c.post("/cart/add", data={"id": "red-mug"})
    assert answer.status_code == 303
    assert "HttpOnly" not in answer.headers["set-cookie"]
    await c.post("/cart/add", data={"id": "blue-notebook"})
    await c.post("/cart/add", data={"id": "not-a-product"})
    cart = (await c.get("/cart")).text
    assert "Red mug" in cart and "Blue notebook" in cart and "$20.00" in cart
    assert "Cart (2)" in cart
    await c.post("/cart/clear")
    assert "Your cart is empty" in (await c.get("/cart")).text


async def test_login_sets_cookies_and_greets() -> None:
    c = client()
    answer = await c.post("/login", data={"email": "ana@example.com", "password": "pw"})
    cookies = answer.headers.get_list("set-cookie")
    assert any(h.startswith("shop_session=") and "HttpOnly" in h for h in cookies)
    assert "Hi, ana@example.com" in (await c.get("/")).text


async def test_checkout_has_the_masked_card_field_and_login_a_password() -> None:
    c = client()
    assert 'class="card-number"' in (await c.get("/checkout")).text
    assert 'type="password"' in (await c.get("/login")).text


async def test_the_account_page_needs_the_httponly_session_and_sign_in_comes_back_to_it() -> None:
    c = client()
    away = await c.get("/account")
    assert (away.status_code, away.headers["location"]) == (303, "/login?next=/account")
    form = (await c.get("/login?next=/account")).text
    assert '<input type="hidden" name="next" value="/account">' in form
    answer = await c.post("/login", data={"email": "ana@example.com", "password": "pw", "next": "/account"})
    assert (answer.status_code, answer.headers["location"]) == (303, "/account")
    page = await c.get("/account")
    assert page.status_code == 200 and "Signed in as ana@example.com." in page.text
    assert '<a href="/account" id="account-link">Hi, ana@example.com</a>' in page.text
    # only a path of the shop: never another site
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example/", "/\t/evil.example/", ""):
        answer = await client().post("/login", data={"email": "a@b.c", "next": target})
        assert answer.headers["location"] == "/", target


async def test_every_page_has_an_icon_that_is_served() -> None:
    """A browser asks for /favicon.ico when a page names no icon: a 404 in the visitor's console."""
    c = client()
    for path in ("/", "/search", "/cart", "/login", f"/product/{PRODUCTS[0].id}"):
        page = (await c.get(path)).text
        assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in page, path
    icon = await c.get("/static/favicon.svg")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
