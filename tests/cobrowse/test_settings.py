from pathlib import Path

import pytest

from cobrowse.cli import main
from cobrowse.settings import Settings, SettingsError, command_line_secret_warnings


def test_flag_beats_environment_beats_default() -> None:
    env = {"COBROWSE_API_PORT": "9100", "COBROWSE_PROXY_PORT": "9101"}
    settings = Settings.resolve({"api_port": 9200}, env)
    assert settings.api_port == 9200  # flag
    assert settings.proxy_port == 9101  # environment
    assert settings.proxy_domain == "cobrowse.localhost"  # default


def test_the_proxys_limits_default_to_what_the_proxy_promises() -> None:
    # HTML/CSS over 16 MiB gets the too-large page, an upstream gets 30 s, TLS is verified
    settings = Settings.resolve({}, {})
    assert settings.max_rewrite_bytes == 16 * 1024 * 1024
    assert settings.upstream_timeout_s == 30.0
    assert settings.insecure_upstream is False


def test_environment_values_are_cast_and_checked() -> None:
    settings = Settings.resolve(
        {}, {"COBROWSE_INSECURE_UPSTREAM": "yes", "COBROWSE_DEV_ALLOW_ORIGINS": "http://a, http://b"}
    )
    assert settings.insecure_upstream is True
    assert settings.dev_allow_origins == ("http://a", "http://b")
    with pytest.raises(SettingsError, match="COBROWSE_API_PORT"):
        Settings.resolve({}, {"COBROWSE_API_PORT": "eighty"})


def test_admin_token_is_masked_in_repr() -> None:
    settings = Settings.resolve({}, {"COBROWSE_ADMIN_TOKEN": "s3cret-token"})
    assert settings.admin_token == "s3cret-token"
    assert "s3cret-token" not in repr(settings)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"role": "both"}, "role"),
        ({"api_port": 70000}, "api_port"),
        ({"proxy_domain": "http://x"}, "proxy_domain"),
        ({"role": "proxy"}, "redis-url"),
        ({"rewrite_workers": -2}, "rewrite_workers"),
        ({"ws_rate_per_s": 4}, "ws_rate_per_s must be 5 or more"),
        ({"trusted_proxies": ("10.0.0.0/8", "balancer")}, "trusted_proxies"),
        ({"console_frame_ancestors": ("https://helpdesk.example/app",)}, "console_frame_ancestors"),
        ({"console_frame_ancestors": ("helpdesk.example",)}, "console_frame_ancestors"),
        ({"console_frame_ancestors": ("https://a.example; script-src *",)}, "console_frame_ancestors"),
        ({"console_frame_ancestors": ("*",)}, "console_frame_ancestors"),
    ],
)
def test_invalid_settings_name_the_setting(changes: dict, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.resolve(changes, {})


def test_public_api_url_is_same_site_as_the_proxy_in_development() -> None:
    assert Settings(api_port=8000).public_api_url == "http://cobrowse.localhost:8000"
    explicit = Settings(api_public_url="https://cb.example.com/")
    assert explicit.public_api_url == "https://cb.example.com"


def test_help_lists_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for command in ("serve", "demo", "rewrite"):
        assert command in out


def test_usage_error_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--api-port", "x"])
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("cobrowse:")


def test_trusted_proxies_come_from_the_environment_as_a_list() -> None:
    settings = Settings.resolve({}, {"COBROWSE_TRUSTED_PROXIES": "10.0.0.0/8, 2001:db8::/32"})
    assert settings.trusted_proxies == ("10.0.0.0/8", "2001:db8::/32")


def test_origins_that_may_frame_the_console_come_from_the_environment_as_a_list() -> None:
    env = {"COBROWSE_CONSOLE_FRAME_ANCESTORS": "https://helpdesk.example, https://*.crm.example:8443"}
    settings = Settings.resolve({}, env)
    assert settings.console_frame_ancestors == ("https://helpdesk.example", "https://*.crm.example:8443")


def test_admin_token_from_a_file(tmp_path: Path) -> None:
    """A secret file (Docker, Kubernetes) keeps the token out of the process list and the
    environment; its trailing newline is not part of the token."""
    path = tmp_path / "token"
    path.write_text("s3cret-from-file\n")
    settings = Settings.resolve({"admin_token_file": str(path)}, {})
    assert settings.admin_token == "s3cret-from-file"
    from_env = Settings.resolve({}, {"COBROWSE_ADMIN_TOKEN_FILE": str(path)})
    assert from_env.admin_token == "s3cret-from-file"
    assert "s3cret-from-file" not in repr(settings)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "No such file"),
        (b"", "is empty"),
        (b" \n\n", "is empty"),
        (b"one two\n", "more than one token"),
        (b"one\ntwo\n", "more than one token"),
        (b"\xff\xfe", "not UTF-8"),
        (b"x" * 5000, "larger than"),
    ],
)
def test_a_bad_admin_token_file_is_a_clear_error(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "token"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SettingsError, match=message) as raised:
        Settings.resolve({"admin_token_file": str(path)}, {})
    assert str(path) in str(raised.value)


def test_the_admin_token_is_given_one_way(tmp_path: Path) -> None:
    """A flag beats the environment, for the token as for every setting; two ways from the same
    place are an error."""
    path = tmp_path / "token"
    path.write_text("from-file")
    env_token, env_file = {"COBROWSE_ADMIN_TOKEN": "from-env"}, {"COBROWSE_ADMIN_TOKEN_FILE": str(path)}
    assert Settings.resolve({"admin_token_file": str(path)}, env_token).admin_token == "from-file"
    assert Settings.resolve({"admin_token": "from-flag"}, env_file).admin_token == "from-flag"
    with pytest.raises(SettingsError, match="one way"):
        Settings.resolve({}, {**env_token, **env_file})
    with pytest.raises(SettingsError, match="one way"):
        Settings.resolve({"admin_token": "from-flag", "admin_token_file": str(path)}, {})


def test_a_secret_flag_is_warned_about(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--admin-token`` shows in ``ps`` to every user of the machine: a warning names the
    alternatives; the environment and the file give none."""
    (warning,) = command_line_secret_warnings({"admin_token": "s3cret"})
    assert "--admin-token" in warning and "COBROWSE_ADMIN_TOKEN" in warning
    assert "--admin-token-file" in warning
    assert "s3cret" not in warning
    assert command_line_secret_warnings({"admin_token": None, "admin_token_file": "/run/secrets/t"}) == []
    # and `cobrowse serve` prints it (here it then stops: no Redis for the proxy role)
    monkeypatch.delenv("COBROWSE_REDIS_URL", raising=False)
    assert main(["serve", "--role", "proxy", "--admin-token", "s3cret"]) == 2
    err = capsys.readouterr().err
    assert "warning: --admin-token shows in the process list" in err and "s3cret" not in err
