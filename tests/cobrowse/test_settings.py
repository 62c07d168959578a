import pytest

from cobrowse.cli import main
from cobrowse.settings import Settings, SettingsError


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
        ({"trusted_proxies": ("10.0.0.0/8", "balancer")}, "trusted_proxies"),
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
