"""The ZEGO apps (profiles) the product reads rooms from: each one's client and roster service."""

from __future__ import annotations

from dataclasses import dataclass

from bot.roster.service import SnapshotService
from bot.zim import ZimClient
from bot.zim.probe import CredentialProbe


@dataclass(frozen=True)
class ZegoApp:
    """One ZEGO app (profile): its client, paced under that app's limit, and its snapshots."""

    profile: str
    client: ZimClient
    snapshots: SnapshotService
    probe: CredentialProbe | None = None  # `serve` runs it; readiness reports its verdict
    watch_client: ZimClient | None = None  # watches' polls: one user a page (they need only ZIM's `Count`)


@dataclass(frozen=True)
class ZegoApps:
    """Every configured profile; `pick("")` is the default one."""

    default: str
    by_profile: dict[str, ZegoApp]

    def resolve(self, profile: str) -> str | None:
        """The configured profile `profile` names, ignoring case ("" is the default); None when there is none."""
        if not profile:
            return self.default
        wanted = profile.casefold()
        return next((name for name in self.by_profile if name.casefold() == wanted), None)

    def pick(self, profile: str) -> ZegoApp | None:
        name = self.resolve(profile)
        return None if name is None else self.by_profile[name]

    @property
    def several(self) -> bool:
        return len(self.by_profile) > 1
