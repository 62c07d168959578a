"""One settings object for every part of cobrowse.

Values come from command-line flags, then ``COBROWSE_*`` environment variables, then defaults.
The object is built once (``Settings.resolve``) and passed explicitly to the API and the proxy.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names the setting."""


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"not a boolean: {text!r}")


def _csv(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


@dataclass(frozen=True)
class Option:
    """How one setting is named on the command line and in the environment."""

    name: str
    cast: Callable[[str], Any]
    help: str
    secret: bool = False

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return "COBROWSE_" + self.name.upper()


@dataclass(frozen=True)
class Settings:
    """Every setting of a cobrowse process. Secrets are masked in ``repr``."""

    role: str = "all"
    host: str = "127.0.0.1"
    api_port: int = 8000
    proxy_port: int = 8001
    proxy_domain: str = "cobrowse.localhost"
    # Scheme the agent's browser uses to reach the proxy (https behind a TLS load balancer).
    proxy_public_scheme: str = "http"
    # Port the agent's browser uses to reach the proxy; 0 means the same as proxy_port.
    proxy_public_port: int = 0
    # Base URL the agent's and the visitor's browsers use to reach the API; "" derives it.
    api_public_url: str = ""
    redis_url: str = ""
    # Prefix of every Redis key and channel: one Redis may hold several deployments (and tests).
    redis_namespace: str = "cobrowse:"
    admin_token: str = field(default="", repr=False)
    # A file holding the admin token (a Docker or Kubernetes secret): unlike --admin-token, the
    # token then shows in no process list, and unlike the environment, in no `docker inspect`.
    admin_token_file: str = ""
    insecure_upstream: bool = False
    upstream_ca_file: str = ""
    # Development only: loopback/private origins the proxy may fetch (tests and the demo).
    dev_allow_origins: tuple[str, ...] = ()
    upstream_timeout_s: float = 30.0
    max_rewrite_bytes: int = 16 * 1024 * 1024
    max_decompressed_bytes: int = 64 * 1024 * 1024
    # Worker processes that rewrite pages of 16 to 128 KiB: -1 one per CPU (at most 4), 0 none
    # (every page in a thread of the proxy process); larger pages get half as many more (>= 1).
    rewrite_workers: int = -1
    # Load balancers or reverse proxies in front of the proxy (CIDRs): from them, the client's
    # address is read from X-Forwarded-For. Behind an HTTP one it must be set (docs/DEPLOY).
    trusted_proxies: tuple[str, ...] = ()
    # Origins whose pages may show the agent console and the virtual browser in a frame (a
    # helpdesk that embeds them); none by default, against click-jacking.
    console_frame_ancestors: tuple[str, ...] = ()
    visitor_grace_s: float = 30.0
    # Visitor registrations (POST /api/v1/visitors, the banner's first call) per minute from one
    # client address and account; 0 allows any number.
    visitor_registrations_per_min: int = 600
    ticket_ttl_s: int = 60
    ws_max_message_bytes: int = 64 * 1024
    ws_rate_per_s: int = 50
    log_level: str = "info"

    @property
    def public_proxy_port(self) -> int:
        return self.proxy_public_port or self.proxy_port

    @property
    def public_api_url(self) -> str:
        if self.api_public_url:
            return self.api_public_url.rstrip("/")
        # In development the console must be same-site with the proxied origins (the proxy
        # credential cookie reaches the virtual browser's iframe only then): serve it on the
        # proxy domain itself, which Chromium resolves to loopback like every *.localhost name.
        if self.proxy_domain == "localhost" or self.proxy_domain.endswith(".localhost"):
            return f"http://{self.proxy_domain}:{self.api_port}"
        return f"http://{self.host}:{self.api_port}"

    def __repr__(self) -> str:  # pragma: no cover - formatting only
        shown = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in SECRET_NAMES and value:
                value = "***"
            shown.append(f"{f.name}={value!r}")
        return "Settings(" + ", ".join(shown) + ")"

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    @classmethod
    def resolve(
        cls,
        flags: Mapping[str, Any] | argparse.Namespace | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Settings:
        """Build settings from flags (None means "not given"), then the environment, then defaults."""
        if isinstance(flags, argparse.Namespace):
            flags = vars(flags)
        flags = flags or {}
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        from_flags: set[str] = set()
        for option in OPTIONS:
            given = flags.get(option.name)
            if given is not None:
                values[option.name] = given
                from_flags.add(option.name)
                continue
            raw = environ.get(option.env)
            if raw is None:
                continue
            try:
                values[option.name] = option.cast(raw)
            except ValueError as exc:
                raise SettingsError(f"{option.env}={raw!r}: {exc}") from exc
        _admin_token_from_file(values, from_flags)
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.role not in ROLES:
            raise SettingsError(f"role must be one of {', '.join(ROLES)}, not {self.role!r}")
        for name in ("api_port", "proxy_port", "proxy_public_port"):
            port = getattr(self, name)
            if not 0 <= port <= 65535:
                raise SettingsError(f"{name} must be a port number, not {port}")
        if self.proxy_public_scheme not in {"http", "https"}:
            raise SettingsError("proxy_public_scheme must be http or https")
        if not self.proxy_domain or "/" in self.proxy_domain or ":" in self.proxy_domain:
            raise SettingsError(f"proxy_domain must be a bare domain name, not {self.proxy_domain!r}")
        if self.role == "proxy" and not self.redis_url:
            raise SettingsError("--role proxy needs --redis-url: the proxy shares state with the API")
        if not self.redis_namespace:
            raise SettingsError("redis_namespace must not be empty")
        if self.upstream_timeout_s <= 0:
            raise SettingsError("upstream_timeout_s must be positive")
        if self.visitor_registrations_per_min < 0:
            raise SettingsError("visitor_registrations_per_min must be 0 (no limit) or more")
        if self.ws_rate_per_s < MIN_WS_RATE_PER_S:
            raise SettingsError(
                f"ws_rate_per_s must be {MIN_WS_RATE_PER_S} or more: the banner and the virtual browser "
                "keep under 4/5 of it and ping besides, and each report would wait too long under less"
            )
        if self.rewrite_workers < -1:
            raise SettingsError("rewrite_workers must be -1 (one per CPU), 0 (threads only) or a count")
        for origin in self.console_frame_ancestors:
            if not _FRAME_ANCESTOR.fullmatch(origin):
                raise SettingsError(
                    f"console_frame_ancestors: {origin!r} is not an origin such as https://helpdesk.example "
                    "or https://*.example.com (scheme, host, optional port; no path)"
                )
        for network in self.trusted_proxies:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError as exc:
                raise SettingsError(f"trusted_proxies: {network!r} is not an address or network") from exc


ROLES = ("all", "api", "proxy")
# A host source of a Content-Security-Policy that names one origin, or its subdomains (``*.``)
_FRAME_ANCESTOR = re.compile(r"https?://(\*\.)?[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::\d{1,5})?")
MIN_WS_RATE_PER_S = 5
MAX_TOKEN_FILE_BYTES = 4096


def read_token_file(path: str) -> str:
    """The token in ``path``: its text without the surrounding white space (a secret file often
    ends with a newline). A clear error when it is unreadable, empty or not one line of text."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_TOKEN_FILE_BYTES + 1)
    except OSError as exc:
        raise SettingsError(f"admin token file {path!r}: {exc.strerror or exc}") from exc
    if len(data) > MAX_TOKEN_FILE_BYTES:
        raise SettingsError(f"admin token file {path!r} is larger than {MAX_TOKEN_FILE_BYTES} bytes")
    try:
        token = data.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise SettingsError(f"admin token file {path!r} is not UTF-8 text") from exc
    if not token:
        raise SettingsError(f"admin token file {path!r} is empty")
    if any(c.isspace() or not c.isprintable() for c in token):
        raise SettingsError(f"admin token file {path!r} holds more than one token (white space inside)")
    return token


def _admin_token_from_file(values: dict[str, Any], from_flags: set[str]) -> None:
    """``admin_token`` from ``admin_token_file`` when that is the one given: a flag beats the
    environment (``--admin-token-file`` wins over ``COBROWSE_ADMIN_TOKEN``); two ways from the
    same place are an error."""
    pair = ("admin_token", "admin_token_file")
    given = [name for name in pair if values.get(name)]
    if len(given) == 2:
        flagged = [name for name in given if name in from_flags]
        if len(flagged) != 1:
            raise SettingsError("give the admin token one way: --admin-token-file "
                                "(COBROWSE_ADMIN_TOKEN_FILE) or --admin-token (COBROWSE_ADMIN_TOKEN)")
        given = flagged
        values.pop(next(name for name in pair if name not in flagged))
    if given == ["admin_token_file"]:
        values["admin_token"] = read_token_file(values["admin_token_file"])


def command_line_secret_warnings(flags: Mapping[str, Any] | argparse.Namespace) -> list[str]:
    """What to tell the user about secrets given as flags, which every user of the machine can
    read in the process list."""
    if isinstance(flags, argparse.Namespace):
        flags = vars(flags)
    names = {o.name for o in OPTIONS}
    return [
        f"cobrowse: warning: {o.flag} shows in the process list (ps) to every user of this machine; "
        f"prefer {o.env}" + (f" or {o.flag}-file" if f"{o.name}_file" in names else "")
        for o in OPTIONS
        if o.secret and flags.get(o.name)
    ]

OPTIONS: tuple[Option, ...] = (
    Option("role", str, "what to run: all (API and proxy in one process), api, or proxy"),
    Option("host", str, "address to listen on"),
    Option("api_port", int, "port of the control API, the agent console and the banner script"),
    Option("proxy_port", int, "port of the rewriting proxy"),
    Option("proxy_domain", str, "domain whose subdomains name proxied origins (*.DOMAIN)"),
    Option("proxy_public_scheme", str, "scheme browsers use to reach the proxy (http or https)"),
    Option("proxy_public_port", int, "port browsers use to reach the proxy (0: --proxy-port)"),
    Option("api_public_url", str, "base URL browsers use to reach the API (default: derived)"),
    Option("redis_url", str, "Redis URL for shared state; empty runs the embedded in-process store"),
    Option("redis_namespace", str, "prefix of every Redis key and pub/sub channel of this deployment"),
    Option("admin_token", str, "bearer token of administrators (shows in the process list: "
           "prefer the environment or --admin-token-file)", secret=True),
    Option("admin_token_file", str, "file holding the bearer token of administrators"),
    Option("insecure_upstream", _bool, "do not verify upstream TLS certificates (development only)"),
    Option("upstream_ca_file", str, "extra CA bundle (PEM) trusted for upstream HTTPS"),
    Option(
        "dev_allow_origins",
        _csv,
        "comma-separated loopback/private origins the proxy may fetch (development only)",
    ),
    Option("upstream_timeout_s", float, "seconds before an upstream that does not answer gets a 504"),
    Option("max_rewrite_bytes", int, "largest HTML or CSS body the proxy rewrites"),
    Option("max_decompressed_bytes", int, "largest decompressed upstream body the proxy accepts"),
    Option(
        "rewrite_workers",
        int,
        "worker processes rewriting pages of 16-128 KiB (-1: one per CPU, at most 4; 0: none); "
        "larger pages get half as many more",
    ),
    Option(
        "trusted_proxies",
        _csv,
        "comma-separated addresses or networks (CIDR) of load balancers in front of the proxy "
        "and the API, whose X-Forwarded-For names the client",
    ),
    Option(
        "console_frame_ancestors",
        _csv,
        "comma-separated origins (https://helpdesk.example, https://*.example.com) whose pages may "
        "show the agent console and the virtual browser in a frame; none by default",
    ),
    Option("visitor_grace_s", float, "seconds a disconnected visitor counts as present"),
    Option(
        "visitor_registrations_per_min",
        int,
        "visitor registrations allowed per minute from one address and account (0: no limit)",
    ),
    Option("ticket_ttl_s", int, "seconds a proxy ticket stays valid (at most 60)"),
    Option("ws_max_message_bytes", int, "largest WebSocket message the API accepts"),
    Option("ws_rate_per_s", int, "WebSocket messages per second allowed per connection (at least 5)"),
    Option("log_level", str, "logging level: debug, info, warning, error"),
)

SECRET_NAMES = frozenset(o.name for o in OPTIONS if o.secret)


def add_arguments(parser: argparse.ArgumentParser, names: tuple[str, ...] | None = None) -> None:
    """Add the flags of ``names`` (all by default) to ``parser``; each defaults to None."""
    defaults = Settings()
    for option in OPTIONS:
        if names is not None and option.name not in names:
            continue
        default = getattr(defaults, option.name)
        shown = "(not set)" if option.secret or default in ("", ()) else repr(default)
        kwargs: dict[str, Any] = {
            "dest": option.name,
            "default": None,
            "help": f"{option.help}. Env {option.env}; default {shown}",
        }
        if option.cast is _bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = option.cast
            kwargs["metavar"] = option.name.upper()
        parser.add_argument(option.flag, **kwargs)
