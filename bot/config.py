"""Settings read from the environment (and `.env`). Each problem stops start-up with one sentence."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

DEFAULT_ZIM_BASE_URL = "https://zim-api.zego.im"
ZIM_REGIONS = ("sha", "hkg", "fra", "lax", "bom", "sgp")
UINT32_MAX = 2**32 - 1


class ConfigError(Exception):
    """A missing or malformed setting; the message names the variable and never echoes a secret."""


@dataclass(frozen=True)
class ZegoSettings:
    app_id: int
    server_secret: str = field(repr=False)
    base_url: str = DEFAULT_ZIM_BASE_URL
    qps: float = 20.0

    def __repr__(self) -> str:
        return f"ZegoSettings(app_id={self.app_id}, server_secret='***', base_url={self.base_url!r}, qps={self.qps})"


def load_dotenv_file() -> None:
    """Load `.env` from the working directory without overriding what the environment already says."""
    from dotenv import load_dotenv

    load_dotenv(override=False)


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"{name} is not set.")
    return value


def parse_app_id(raw: str, name: str = "ZEGO_APP_ID") -> int:
    if not raw.isdigit() or not 0 < int(raw) <= UINT32_MAX:
        raise ConfigError(f"{name} must be the numeric AppId from the ZEGO console (a whole number).")
    return int(raw)


def parse_server_secret(raw: str, name: str = "ZEGO_SERVER_SECRET") -> str:
    # The value is deliberately not quoted back: it is a secret even when malformed.
    if not re.fullmatch(r"[0-9a-fA-F]{32}", raw):
        raise ConfigError(f"{name} must be the 32-character hexadecimal ServerSecret from the ZEGO console.")
    return raw


def zim_base_url(env: Mapping[str, str]) -> str:
    explicit = env.get("ZEGO_API_BASE_URL", "").strip()
    region = env.get("ZEGO_REGION", "").strip().lower()
    if explicit and region:
        raise ConfigError("ZEGO_API_BASE_URL and ZEGO_REGION are both set; set only one of them.")
    if region:
        if region not in ZIM_REGIONS:
            raise ConfigError(f"ZEGO_REGION must be one of {', '.join(ZIM_REGIONS)} (or unset for the global host).")
        return f"https://zim-api-{region}.zego.im"
    if not explicit:
        return DEFAULT_ZIM_BASE_URL
    if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", explicit):
        raise ConfigError("ZEGO_API_BASE_URL must be an http(s) URL such as https://zim-api.zego.im.")
    return explicit.rstrip("/")


def parse_qps(raw: str | None) -> float:
    if raw is None or not raw.strip():
        return 20.0
    try:
        qps = float(raw)
    except ValueError:
        raise ConfigError("ZEGO_QPS must be a number of requests per second, such as 20.") from None
    if not 0 < qps <= 1000:
        raise ConfigError("ZEGO_QPS must be greater than 0 and at most 1000.")
    return qps


def load_zego_settings(env: Mapping[str, str] | None = None) -> ZegoSettings:
    env = os.environ if env is None else env
    return ZegoSettings(
        app_id=parse_app_id(_required(env, "ZEGO_APP_ID")),
        server_secret=parse_server_secret(_required(env, "ZEGO_SERVER_SECRET")),
        base_url=zim_base_url(env),
        qps=parse_qps(env.get("ZEGO_QPS")),
    )


def log_level(env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    name = env.get("LOG_LEVEL", "INFO").strip().upper() or "INFO"
    level = logging.getLevelName(name)
    if not isinstance(level, int):
        raise ConfigError("LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR or CRITICAL.")
    return level


@dataclass(frozen=True)
class SlackSettings:
    bot_token: str = field(repr=False)
    signing_secret: str | None = field(default=None, repr=False)
    app_token: str | None = field(default=None, repr=False)
    api_base_url: str | None = None

    def __repr__(self) -> str:
        return f"SlackSettings(bot_token='***', api_base_url={self.api_base_url!r})"


def _missing_sentence(names: list[str], mode: str) -> str:
    listed = " and ".join(names) if len(names) <= 2 else ", ".join(names[:-1]) + " and " + names[-1]
    verb = "is" if len(names) == 1 else "are"
    return f"{listed} {verb} not set; {mode} needs {'it' if len(names) == 1 else 'them'}."


def load_slack_settings(env: Mapping[str, str] | None = None, *, http_mode: bool) -> SlackSettings:
    """Slack settings for one of the two ways of running: HTTP (signing secret) or Socket Mode (app token)."""
    env = os.environ if env is None else env
    needed = ["SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"] if http_mode else ["SLACK_BOT_TOKEN", "SLACK_APP_TOKEN"]
    missing = [name for name in needed if not env.get(name, "").strip()]
    if missing:
        raise ConfigError(_missing_sentence(missing, "HTTP mode" if http_mode else "Socket Mode"))
    bot_token = env["SLACK_BOT_TOKEN"].strip()
    if not bot_token.startswith("xoxb-"):
        raise ConfigError("SLACK_BOT_TOKEN must be a bot token (it starts with xoxb-).")
    app_token = env.get("SLACK_APP_TOKEN", "").strip() or None
    if not http_mode and app_token is not None and not app_token.startswith("xapp-"):
        raise ConfigError("SLACK_APP_TOKEN must be an app-level token with connections:write (it starts with xapp-).")
    api_base_url = env.get("SLACK_API_BASE_URL", "").strip() or None
    if api_base_url is not None:
        if not re.fullmatch(r"https?://\S+", api_base_url):
            raise ConfigError("SLACK_API_BASE_URL must be an http(s) URL such as https://slack.com/api/.")
        api_base_url = api_base_url.rstrip("/") + "/"
    return SlackSettings(
        bot_token=bot_token,
        signing_secret=env.get("SLACK_SIGNING_SECRET", "").strip() or None,
        app_token=app_token,
        api_base_url=api_base_url,
    )
