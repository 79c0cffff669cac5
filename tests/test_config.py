import os

import pytest

from bot.settings import ConfigError, load_runtime_settings, load_zego_settings, log_level, parse_watch_qps_share

SECRET = "0123456789abcdef0123456789abcdef"


def env(**overrides):
    base = {"ZEGO_APP_ID": "1234567890", "ZEGO_SERVER_SECRET": SECRET}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def test_defaults():
    settings = load_zego_settings(env())
    assert settings.app_id == 1234567890
    assert settings.base_url == "https://zim-api.zego.im"
    assert settings.qps == 20


def test_region_maps_to_regional_host():
    assert load_zego_settings(env(ZEGO_REGION="fra")).base_url == "https://zim-api-fra.zego.im"


def test_explicit_base_url_is_used_without_trailing_slash():
    assert load_zego_settings(env(ZEGO_API_BASE_URL="http://127.0.0.1:8710/")).base_url == "http://127.0.0.1:8710"


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"ZEGO_APP_ID": None}, "ZEGO_APP_ID"),
        ({"ZEGO_APP_ID": "12ab"}, "ZEGO_APP_ID"),
        ({"ZEGO_APP_ID": "0"}, "ZEGO_APP_ID"),
        ({"ZEGO_APP_ID": str(2**32)}, "ZEGO_APP_ID"),
        ({"ZEGO_SERVER_SECRET": None}, "ZEGO_SERVER_SECRET"),
        ({"ZEGO_REGION": "mars"}, "ZEGO_REGION"),
        ({"ZEGO_REGION": "fra", "ZEGO_API_BASE_URL": "https://x"}, "ZEGO_REGION"),
        ({"ZEGO_API_BASE_URL": "ftp://x"}, "ZEGO_API_BASE_URL"),
        ({"ZEGO_QPS": "fast"}, "ZEGO_QPS"),
        ({"ZEGO_QPS": "0"}, "ZEGO_QPS"),
    ],
)
def test_bad_settings_name_the_variable(overrides, variable):
    with pytest.raises(ConfigError, match=variable):
        load_zego_settings(env(**overrides))


def test_a_malformed_secret_is_never_echoed():
    bad = "not-a-secret-but-still-private-XYZ"
    with pytest.raises(ConfigError) as raised:
        load_zego_settings(env(ZEGO_SERVER_SECRET=bad))
    assert bad not in str(raised.value)


def test_repr_hides_the_secret():
    assert SECRET not in repr(load_zego_settings(env()))


def test_log_level():
    assert log_level({"LOG_LEVEL": "debug"}) == 10
    with pytest.raises(ConfigError, match="LOG_LEVEL"):
        log_level({"LOG_LEVEL": "loud"})


def test_profiles_default_and_named_extras():
    from bot.settings import load_zego_profiles

    profiles = load_zego_profiles(
        env(
            ZEGO_PROFILE_NAME="prod",
            ZEGO_PROFILES="staging, eu-west",
            ZEGO_STAGING_APP_ID="42",
            ZEGO_STAGING_SERVER_SECRET="b" * 32,
            ZEGO_STAGING_QPS="5",
            ZEGO_EU_WEST_APP_ID="43",
            ZEGO_EU_WEST_SERVER_SECRET="c" * 32,
            ZEGO_EU_WEST_REGION="fra",
        )
    )
    assert profiles.default == "prod"
    assert list(profiles.by_name) == ["prod", "staging", "eu-west"]
    assert profiles.by_name["staging"].app_id == 42
    assert profiles.by_name["staging"].qps == 5
    assert profiles.by_name["eu-west"].base_url == "https://zim-api-fra.zego.im"
    assert "c" * 32 not in repr(profiles)


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"ZEGO_PROFILES": "staging"}, "ZEGO_STAGING_APP_ID"),
        (
            {"ZEGO_PROFILES": "staging", "ZEGO_STAGING_APP_ID": "1", "ZEGO_STAGING_SERVER_SECRET": "x"},
            "ZEGO_STAGING_SERVER_SECRET",
        ),
        ({"ZEGO_PROFILES": "bad name"}, "ZEGO_PROFILES"),
        ({"ZEGO_PROFILES": "default"}, "ZEGO_PROFILES"),
        ({"ZEGO_PROFILE_NAME": "no/slash"}, "ZEGO_PROFILE_NAME"),
    ],
)
def test_profile_errors_name_the_variable(overrides, variable):
    from bot.settings import load_zego_profiles

    with pytest.raises(ConfigError, match=variable):
        load_zego_profiles(env(**overrides))


def test_watch_qps_share_defaults_to_a_quarter_and_accepts_the_range():
    assert load_runtime_settings({}).watch_qps_share == 0.25
    assert load_runtime_settings({"ROOMUSERS_WATCH_QPS_SHARE": " "}).watch_qps_share == 0.25
    for raw, share in (("0.1", 0.1), ("1", 1.0), (" 0.5 ", 0.5), ("1e-3", 0.001)):
        assert parse_watch_qps_share(raw) == share


@pytest.mark.parametrize("raw", ["0", "-0.1", "1.01", "2", "nan", "inf", "-inf", "a quarter", "25%"])
def test_a_bad_watch_qps_share_is_one_sentence_naming_the_variable(raw):
    with pytest.raises(ConfigError) as raised:
        load_runtime_settings({"ROOMUSERS_WATCH_QPS_SHARE": raw})
    message = str(raised.value)
    assert message == (
        "ROOMUSERS_WATCH_QPS_SHARE must be a number in (0, 1], the share of ZEGO_QPS watches may use, such as 0.25."
    )


@pytest.mark.parametrize(
    ("overrides", "sentence"),
    [
        ({"ZEGO_APP_ID": str(2**32)}, "ZEGO_APP_ID is out of range: a ZEGO AppId is between 1 and 4294967295."),
        ({"ZEGO_APP_ID": "0"}, "ZEGO_APP_ID is out of range"),
        ({"ZEGO_APP_ID": "١٢٣"}, "ZEGO_APP_ID must be the numeric AppId"),  # Arabic-Indic digits: isdigit() is True
        ({"ZEGO_APP_ID": "12ab"}, "a whole number such as 1234567890"),
        ({"ZEGO_SERVER_SECRET": "AB" * 16}, "ZEGO_SERVER_SECRET has upper-case letters"),
        ({"ZEGO_SERVER_SECRET": "xyz"}, "32-character lower-case hexadecimal"),
        ({"ZEGO_PROFILES": "eu,EU"}, "profile names ignore case, and their variables are ZEGO_EU_"),
    ],
)
def test_settings_sentences_say_exactly_what_is_wrong(overrides, sentence):
    from bot.settings import load_zego_profiles

    overrides = {"ZEGO_EU_APP_ID": "5", "ZEGO_EU_SERVER_SECRET": "d" * 32, **overrides}
    with pytest.raises(ConfigError) as raised:
        load_zego_profiles(env(**overrides))
    assert sentence in str(raised.value)
    assert "AB" * 16 not in str(raised.value)


@pytest.mark.parametrize(
    ("raw", "sentence"),
    [
        ("0", "SNAPSHOT_TTL_SECONDS must be between 1 and 3600 seconds (a roster kept for 0 s could not be paged)."),
        ("0.5", "between 1 and 3600 seconds (a roster kept for 0.5 s"),
        ("5000", "SNAPSHOT_TTL_SECONDS must be between 1 and 3600 seconds."),
    ],
)
def test_snapshot_ttl_zero_is_refused(raw, sentence):
    from bot.settings import load_runtime_settings

    with pytest.raises(ConfigError) as raised:
        load_runtime_settings({"SNAPSHOT_TTL_SECONDS": raw})
    assert sentence in str(raised.value)
    assert load_runtime_settings({"SNAPSHOT_TTL_SECONDS": "1"}).snapshot_ttl == 1.0
    assert load_runtime_settings({}).snapshot_ttl == 300.0


def test_profiles_resolve_ignoring_case():
    from bot.settings import load_zego_profiles

    profiles = load_zego_profiles(env(ZEGO_PROFILES="eu", ZEGO_EU_APP_ID="5", ZEGO_EU_SERVER_SECRET="d" * 32))
    assert profiles.resolve("") == "default"
    assert profiles.resolve("EU") == "eu"
    assert profiles.resolve("Default") == "default"
    assert profiles.resolve("us") is None
    assert str(profiles.unknown("us")) == "there is no app profile us; configured: default, eu (set ZEGO_PROFILES)."


def test_dotenv_is_read_from_the_working_directory_only(tmp_path, monkeypatch):
    from bot.settings import load_dotenv_file

    monkeypatch.delenv("ROOMUSERS_TEST_DOTENV", raising=False)
    (tmp_path / ".env").write_text("export ROOMUSERS_TEST_DOTENV=parent\n")
    (tmp_path / "child").mkdir()
    load_dotenv_file(tmp_path / "child")
    assert "ROOMUSERS_TEST_DOTENV" not in os.environ
    load_dotenv_file(tmp_path)
    assert os.environ["ROOMUSERS_TEST_DOTENV"] == "parent"
    monkeypatch.delenv("ROOMUSERS_TEST_DOTENV")
