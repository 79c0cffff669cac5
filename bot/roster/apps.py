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


@dataclass(frozen=True)
class ZegoApps:
    """Every configured profile; `pick("")` is the default one."""

    default: str
    by_profile: dict[str, ZegoApp]

    def pick(self, profile: str) -> ZegoApp | None:
        return self.by_profile.get(profile or self.default)

    @property
    def several(self) -> bool:
        return len(self.by_profile) > 1
