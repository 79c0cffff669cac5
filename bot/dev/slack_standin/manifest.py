"""What the stand-in reads from the app's manifest.yml: whether users can DM the app (the Messages tab).

Slack refuses `chat.postMessage` / uploads to the app's DM with `messages_tab_disabled` when the app's Messages
tab is off, so the stand-in takes that setting from the same manifest a real install is created from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_MANIFEST = Path(__file__).resolve().parents[3] / "manifest.yml"


@dataclass(frozen=True, slots=True)
class ManifestFacts:
    messages_tab_enabled: bool
    scopes: frozenset[str] = frozenset()

    @classmethod
    def load(cls, path: Path = REPO_MANIFEST) -> ManifestFacts:
        import yaml  # a dev dependency, like the stand-in itself

        manifest: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
        app_home = (manifest.get("features") or {}).get("app_home") or {}
        scopes = ((manifest.get("oauth_config") or {}).get("scopes") or {}).get("bot") or []
        return cls(messages_tab_enabled=app_home.get("messages_tab_enabled") is True, scopes=frozenset(scopes))
