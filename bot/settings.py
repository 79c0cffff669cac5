"""Settings read from the environment (and `.env`). Each problem stops start-up with one sentence."""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_ZIM_BASE_URL = "https://zim-api.zego.im"
ZIM_REGIONS = ("sha", "hkg", "fra", "lax", "bom", "sgp")
UINT32_MAX = 2**32 - 1
DEFAULT_PROFILE = "default"
PROFILE_NAME = re.compile(r"[A-Za-z0-9_-]{1,32}")


class ConfigError(Exception):
    """A missing or malformed setting; the message names the variable and never echoes a secret."""


class StartupError(ConfigError):
    """A start-up step failed for a reason only the operator can fix (a rejected token, a port in use): exit 2."""


@dataclass(frozen=True)
class ZegoSettings:
    app_id: int
    server_secret: str = field(repr=False)
    base_url: str = DEFAULT_ZIM_BASE_URL
    qps: float = 20.0
    profile: str = DEFAULT_PROFILE
    env_prefix: str = "ZEGO_"  # where these settings came from, so errors name the right variables

    def __repr__(self) -> str:
        return (
            f"ZegoSettings(profile={self.profile!r}, app_id={self.app_id}, server_secret='***', "
            f"base_url={self.base_url!r}, qps={self.qps})"
        )


@dataclass(frozen=True)
class ZegoProfiles:
    """Named ZEGO apps (e.g. prod and staging); `/roomusers <room> --app NAME` picks one."""

    default: str
    by_name: dict[str, ZegoSettings]

    @property
    def several(self) -> bool:
        return len(self.by_name) > 1

    def resolve(self, name: str) -> str | None:
        """The configured profile `name` names, ignoring case ("" is the default); None when there is none."""
        if not name:
            return self.default
        wanted = name.casefold()
        return next((known for known in self.by_name if known.casefold() == wanted), None)

    def unknown(self, name: str) -> ConfigError:
        """The sentence for a profile name that resolve() does not know."""
        return ConfigError(
            f"there is no app profile {name}; configured: {', '.join(self.by_name)} (set ZEGO_PROFILES)."
        )


def profiles_summary(profiles: ZegoProfiles) -> str:
    """One log line naming the ZEGO app(s) in use (the AppId is not secret; the ServerSecret is never shown)."""

    def where(settings: ZegoSettings) -> str:
        return f"{settings.app_id} at {settings.base_url}, {settings.qps:g} req/s"

    if not profiles.several:
        return f"ZEGO app {where(profiles.by_name[profiles.default])}"
    listed = ", ".join(
        f"{name} ({'default; ' if name == profiles.default else ''}{where(settings)})"
        for name, settings in profiles.by_name.items()
    )
    return f"ZEGO apps: {listed}"


def load_dotenv_file(directory: Path | None = None) -> None:
    """Load `.env` from the working directory (only there, not its parents) without overriding the environment.

    A bare `load_dotenv()` would search from the calling file's directory upwards, finding the repository's
    `.env` rather than the one where the user runs roomusers.
    """
    from dotenv import load_dotenv

    path = (directory or Path.cwd()) / ".env"
    if path.is_file():
        load_dotenv(dotenv_path=path, override=False)


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"{name} is not set.")
    return value


def parse_app_id(raw: str, name: str = "ZEGO_APP_ID") -> int:
    if not re.fullmatch(r"[0-9]+", raw):  # not str.isdigit, which accepts digits of other scripts
        raise ConfigError(
            f"{name} must be the numeric AppId from the ZEGO console (a whole number such as 1234567890)."
        )
    if not 0 < int(raw) <= UINT32_MAX:
        raise ConfigError(f"{name} is out of range: a ZEGO AppId is between 1 and {UINT32_MAX}.")
    return int(raw)


def parse_server_secret(raw: str, name: str = "ZEGO_SERVER_SECRET") -> str:
    # The value is deliberately not quoted back: it is a secret even when malformed.
    if re.fullmatch(r"[0-9a-f]{32}", raw):
        return raw
    if re.fullmatch(r"[0-9a-fA-F]{32}", raw):
        raise ConfigError(
            f"{name} has upper-case letters; ZIM signs with the ServerSecret exactly as the ZEGO console shows "
            "it, in lower case (0-9, a-f)."
        )
    raise ConfigError(f"{name} must be the 32-character lower-case hexadecimal ServerSecret from the ZEGO console.")


def zim_base_url(env: Mapping[str, str], prefix: str = "ZEGO_") -> str:
    url_name, region_name = f"{prefix}API_BASE_URL", f"{prefix}REGION"
    explicit = env.get(url_name, "").strip()
    region = env.get(region_name, "").strip().lower()
    if explicit and region:
        raise ConfigError(f"{url_name} and {region_name} are both set; set only one of them.")
    if region:
        if region not in ZIM_REGIONS:
            raise ConfigError(f"{region_name} must be one of {', '.join(ZIM_REGIONS)} (or unset for the global host).")
        return f"https://zim-api-{region}.zego.im"
    if not explicit:
        return DEFAULT_ZIM_BASE_URL
    if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", explicit):
        raise ConfigError(f"{url_name} must be an http(s) URL such as https://zim-api.zego.im.")
    return explicit.rstrip("/")


def parse_qps(raw: str | None, name: str = "ZEGO_QPS") -> float:
    if raw is None or not raw.strip():
        return 20.0
    try:
        qps = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of requests per second, such as 20.") from None
    if not 0 < qps <= 1000:
        raise ConfigError(f"{name} must be greater than 0 and at most 1000.")
    return qps


def _profile_settings(env: Mapping[str, str], prefix: str, profile: str) -> ZegoSettings:
    return ZegoSettings(
        app_id=parse_app_id(_required(env, f"{prefix}APP_ID"), f"{prefix}APP_ID"),
        server_secret=parse_server_secret(_required(env, f"{prefix}SERVER_SECRET"), f"{prefix}SERVER_SECRET"),
        base_url=zim_base_url(env, prefix),
        qps=parse_qps(env.get(f"{prefix}QPS"), f"{prefix}QPS"),
        profile=profile,
        env_prefix=prefix,
    )


def load_zego_settings(env: Mapping[str, str] | None = None) -> ZegoSettings:
    """The default profile: ZEGO_APP_ID, ZEGO_SERVER_SECRET, ZEGO_API_BASE_URL or ZEGO_REGION, ZEGO_QPS."""
    env = os.environ if env is None else env
    return _profile_settings(env, "ZEGO_", _profile_name(env.get("ZEGO_PROFILE_NAME"), "ZEGO_PROFILE_NAME"))


def _profile_name(raw: str | None, variable: str) -> str:
    name = (raw or "").strip() or DEFAULT_PROFILE
    if not PROFILE_NAME.fullmatch(name):
        raise ConfigError(f"{variable} must be letters, digits, - or _ (at most 32), such as prod or staging.")
    return name


def profile_prefix(name: str) -> str:
    return f"ZEGO_{name.upper().replace('-', '_')}_"


def load_zego_profiles(env: Mapping[str, str] | None = None) -> ZegoProfiles:
    """The default profile plus every name in ZEGO_PROFILES, each read from ZEGO_<NAME>_APP_ID and so on."""
    env = os.environ if env is None else env
    default = load_zego_settings(env)
    by_name = {default.profile: default}
    for raw in env.get("ZEGO_PROFILES", "").split(","):
        if not raw.strip():
            continue
        name = _profile_name(raw, "ZEGO_PROFILES")
        if name.casefold() in {known.casefold() for known in by_name}:
            raise ConfigError(
                f"ZEGO_PROFILES names the profile {name} twice (or also as ZEGO_PROFILE_NAME); profile names "
                f"ignore case, and their variables are {profile_prefix(name)}…."
            )
        by_name[name] = _profile_settings(env, profile_prefix(name), name)
    return ZegoProfiles(default=default.profile, by_name=by_name)


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


def parse_port(raw: str | None, name: str) -> int | None:
    if raw is None or not raw.strip():
        return None
    if not raw.strip().isdigit() or not 0 < int(raw) < 65536:
        raise ConfigError(f"{name} must be a TCP port number between 1 and 65535.")
    return int(raw)


def parse_cli_port(raw: str, name: str = "--port") -> int:
    """A port given on the command line (1..65535), as one sentence instead of argparse's usage error."""
    value = raw.strip()
    if not value.isdigit() or not 0 < int(value) < 65536:
        shown = value if len(value) <= 20 else value[:19] + "…"
        raise ConfigError(f"{name} must be a TCP port number between 1 and 65535 (got {shown!r}).")
    return int(value)


def parse_int(raw: str | None, name: str, *, default: int, low: int, high: int, meaning: str) -> int:
    if raw is None or not raw.strip():
        return default
    value = raw.strip()
    if not value.isdigit() or not low <= int(value) <= high:
        raise ConfigError(f"{name} must be a whole number {meaning} from {low} to {high}.")
    return int(value)


def parse_bool(raw: str | None, name: str, *, default: bool) -> bool:
    if raw is None or not raw.strip():
        return default
    value = raw.strip().lower()
    if value not in ("true", "false"):
        raise ConfigError(f"{name} must be true or false.")
    return value == "true"


def parse_seconds(raw: str | None, name: str, default: float, *, minimum: float = 0.0, why: str = "") -> float:
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds.") from None
    if not minimum <= value <= 3600:
        reason = why.format(value=raw.strip()) if value < minimum else ""
        raise ConfigError(f"{name} must be between {minimum:g} and 3600 seconds{reason}.")
    return value


WATCH_QPS_SHARE_SETTING = "ROOMUSERS_WATCH_QPS_SHARE"
DEFAULT_WATCH_QPS_SHARE = 0.25


def parse_watch_qps_share(raw: str | None, name: str = WATCH_QPS_SHARE_SETTING) -> float:
    """The share of each ZEGO app's ZEGO_QPS that background (watch) traffic may use: in (0, 1], default 0.25."""
    if raw is None or not raw.strip():
        return DEFAULT_WATCH_QPS_SHARE
    try:
        share = float(raw)
    except ValueError:
        share = math.nan
    if not 0 < share <= 1:  # also refuses nan
        raise ConfigError(f"{name} must be a number in (0, 1], the share of ZEGO_QPS watches may use, such as 0.25.")
    return share


@dataclass(frozen=True)
class LimitSettings:
    """Limits on what one person (or everyone at once) can make a replica do."""

    user_rate: int = 30  # commands and clicks per person per minute; 0 = off
    max_concurrent_reads: int = 4  # full ZIM reads at once per ZEGO app (per replica); the rest queue
    read_deadline: float = 300.0  # a read still going after this ends as incomplete
    refresh_min: float = 10.0  # a Refresh of a younger snapshot answers from it


def load_limit_settings(env: Mapping[str, str] | None = None) -> LimitSettings:
    env = os.environ if env is None else env
    deadline = parse_seconds(env.get("ROOMUSERS_READ_DEADLINE_SECONDS"), "ROOMUSERS_READ_DEADLINE_SECONDS", 300.0)
    if deadline <= 0:
        raise ConfigError("ROOMUSERS_READ_DEADLINE_SECONDS must be more than 0 seconds.")
    return LimitSettings(
        user_rate=parse_int(
            env.get("ROOMUSERS_USER_RATE"),
            "ROOMUSERS_USER_RATE",
            default=30,
            low=0,
            high=10_000,
            meaning="of requests per minute (0 turns the limit off)",
        ),
        max_concurrent_reads=parse_int(
            env.get("ROOMUSERS_MAX_CONCURRENT_READS"),
            "ROOMUSERS_MAX_CONCURRENT_READS",
            default=4,
            low=1,
            high=64,
            meaning="of reads",
        ),
        read_deadline=deadline,
        refresh_min=parse_seconds(env.get("ROOMUSERS_REFRESH_MIN_SECONDS"), "ROOMUSERS_REFRESH_MIN_SECONDS", 10.0),
    )


@dataclass(frozen=True)
class WatchSettings:
    """Watches: how often they poll, how long they last, and how many there may be."""

    interval: float = 30.0  # ROOMUSERS_WATCH_INTERVAL_SECONDS, 1-3600
    hours: float = 8.0  # ROOMUSERS_WATCH_HOURS: a watch ends by itself after this
    max_per_conversation: int = 20
    max_per_workspace: int = 200


def _parse_hours(raw: str | None, name: str, default: float) -> float:
    if raw is None or not raw.strip():
        return default
    try:
        hours = float(raw)
    except ValueError:
        hours = math.nan
    if not 0 < hours <= 168:  # also refuses nan
        raise ConfigError(f"{name} must be a number of hours above 0 and at most 168 (a week), such as 8.")
    return hours


def load_watch_settings(env: Mapping[str, str] | None = None) -> WatchSettings:
    env = os.environ if env is None else env
    return WatchSettings(
        interval=parse_seconds(
            env.get("ROOMUSERS_WATCH_INTERVAL_SECONDS"), "ROOMUSERS_WATCH_INTERVAL_SECONDS", 30.0, minimum=1.0
        ),
        hours=_parse_hours(env.get("ROOMUSERS_WATCH_HOURS"), "ROOMUSERS_WATCH_HOURS", 8.0),
        max_per_conversation=parse_int(
            env.get("ROOMUSERS_MAX_WATCHES_PER_CONVERSATION"),
            "ROOMUSERS_MAX_WATCHES_PER_CONVERSATION",
            default=20,
            low=1,
            high=1000,
            meaning="of watches",
        ),
        max_per_workspace=parse_int(
            env.get("ROOMUSERS_MAX_WATCHES_PER_WORKSPACE"),
            "ROOMUSERS_MAX_WATCHES_PER_WORKSPACE",
            default=200,
            low=1,
            high=100_000,
            meaning="of watches",
        ),
    )


@dataclass(frozen=True)
class RuntimeSettings:
    """How this replica runs: shared state, ops endpoints, shutdown grace, snapshot lifetime, limits, watch share."""

    redis_url: str | None = field(default=None, repr=False)  # may carry a password
    metrics_port: int | None = None
    shutdown_grace: float = 20.0
    snapshot_ttl: float = 300.0
    watch_qps_share: float = DEFAULT_WATCH_QPS_SHARE
    allow_external: bool = False
    snapshot_budget_mb: int = 128
    history_hours: int = 24  # ROOMUSERS_HISTORY_HOURS: how long a room's last complete read is kept
    history_max_mb: int = 64  # ROOMUSERS_HISTORY_MAX_MB: the memory budget of those baselines
    limits: LimitSettings = field(default_factory=LimitSettings)
    watch: WatchSettings = field(default_factory=WatchSettings)


def load_runtime_settings(env: Mapping[str, str] | None = None) -> RuntimeSettings:
    env = os.environ if env is None else env
    return RuntimeSettings(
        redis_url=env.get("REDIS_URL", "").strip() or None,
        metrics_port=parse_port(env.get("METRICS_PORT"), "METRICS_PORT"),
        shutdown_grace=parse_seconds(env.get("SHUTDOWN_GRACE_SECONDS"), "SHUTDOWN_GRACE_SECONDS", 20.0),
        snapshot_ttl=parse_seconds(
            env.get("SNAPSHOT_TTL_SECONDS"),
            "SNAPSHOT_TTL_SECONDS",
            300.0,
            minimum=1.0,
            why=" (a roster kept for {value} s could not be paged)",
        ),
        watch_qps_share=parse_watch_qps_share(env.get(WATCH_QPS_SHARE_SETTING)),
        allow_external=parse_bool(env.get("ROOMUSERS_ALLOW_EXTERNAL"), "ROOMUSERS_ALLOW_EXTERNAL", default=False),
        snapshot_budget_mb=parse_int(
            env.get("SNAPSHOT_REDIS_MAX_MB"), "SNAPSHOT_REDIS_MAX_MB", default=128, low=1, high=65536, meaning="of MB"
        ),
        history_hours=parse_int(
            env.get("ROOMUSERS_HISTORY_HOURS"),
            "ROOMUSERS_HISTORY_HOURS",
            default=24,
            low=1,
            high=720,
            meaning="of hours",
        ),
        history_max_mb=parse_int(
            env.get("ROOMUSERS_HISTORY_MAX_MB"),
            "ROOMUSERS_HISTORY_MAX_MB",
            default=64,
            low=1,
            high=65536,
            meaning="of MB",
        ),
        limits=load_limit_settings(env),
        watch=load_watch_settings(env),
    )


# Every variable the product reads (besides the per-profile ZEGO_<NAME>_* ones); the deploy files are checked
# against this list.
KNOWN_VARIABLES: tuple[str, ...] = (
    "ZEGO_APP_ID",
    "ZEGO_SERVER_SECRET",
    "ZEGO_API_BASE_URL",
    "ZEGO_REGION",
    "ZEGO_QPS",
    "ZEGO_PROFILE_NAME",
    "ZEGO_PROFILES",
    "SLACK_BOT_TOKEN",
    "SLACK_APP_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_API_BASE_URL",
    "ROOMUSERS_ALLOWED_CHANNELS",
    "ROOMUSERS_ALLOWED_USERS",
    "ROOMUSERS_ALLOWED_USERGROUPS",
    "ROOMUSERS_ALLOW_EXTERNAL",
    "ROOMUSERS_USER_RATE",
    "ROOMUSERS_MAX_CONCURRENT_READS",
    "ROOMUSERS_READ_DEADLINE_SECONDS",
    "ROOMUSERS_REFRESH_MIN_SECONDS",
    "ROOMUSERS_WATCH_INTERVAL_SECONDS",
    "ROOMUSERS_WATCH_HOURS",
    "ROOMUSERS_MAX_WATCHES_PER_CONVERSATION",
    "ROOMUSERS_MAX_WATCHES_PER_WORKSPACE",
    "ROOMUSERS_WATCH_QPS_SHARE",
    "REDIS_URL",
    "METRICS_PORT",
    "SHUTDOWN_GRACE_SECONDS",
    "SNAPSHOT_TTL_SECONDS",
    "SNAPSHOT_REDIS_MAX_MB",
    "ROOMUSERS_HISTORY_HOURS",
    "ROOMUSERS_HISTORY_MAX_MB",
    "LOG_LEVEL",
    "LOG_FORMAT",
)
PROFILE_VARIABLE = re.compile(
    r"ZEGO_[A-Z0-9_]+_(APP_ID|SERVER_SECRET|API_BASE_URL|REGION|QPS|ALLOWED_USERS|ALLOWED_USERGROUPS|ALLOWED_CHANNELS)"
)
