"""The Dockerfile and docker-compose.yml use only commands and flags that exist (no Docker here)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import yaml

from cobrowse.cli import build_parser
from cobrowse.settings import OPTIONS

ROOT = Path(__file__).resolve().parents[1]
KNOWN_ENV = {o.env for o in OPTIONS}


def _instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def _entrypoint() -> list[str]:
    [value] = [rest for kw, rest in _instructions() if kw == "ENTRYPOINT"]
    return list(json.loads(value))


def test_dockerfile_shape() -> None:
    instructions = _instructions()
    assert instructions[0][0] == "FROM" and re.fullmatch(r"python:3\.\d+-slim", instructions[0][1])
    users = [rest for kw, rest in instructions if kw == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert _entrypoint() == ["cobrowse", "serve"]
    [health] = [rest for kw, rest in instructions if kw == "HEALTHCHECK"]
    assert "/healthz" in health
    for kw, rest in instructions:
        if kw == "ENV":
            names = {m for m in re.findall(r"(COBROWSE_[A-Z_]+)=", rest)}
            assert names <= KNOWN_ENV, names - KNOWN_ENV
        if kw == "COPY":
            for source in shlex.split(rest)[:-1]:
                assert (ROOT / source).exists(), source


def test_entrypoint_parses_with_the_real_cli() -> None:
    args = build_parser().parse_args(_entrypoint()[1:])
    assert args.command == "serve"


def test_compose_services_use_existing_flags_and_settings() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"redis", "api", "proxy"} <= set(services)
    parser = build_parser()
    roles = {}
    for name in ("api", "proxy"):
        service = services[name]
        assert service["build"] == "."
        args = parser.parse_args([*_entrypoint()[1:], *service["command"]])
        roles[name] = args.role
        assert args.redis_url and args.redis_url.startswith("redis://redis:")
        assert set(service.get("environment", {})) <= KNOWN_ENV
    assert roles == {"api": "api", "proxy": "proxy"}
