"""The sandbox's built-in AppId and ServerSecret.

These are public demo values, printed by `run_sandbox` so a developer can point the bot at a local sandbox
without a ZEGOCLOUD account. They are not a real credential and open nothing outside the sandbox.
"""

from __future__ import annotations

SANDBOX_APP_ID = 1234567890
SANDBOX_SERVER_SECRET = "5d1e0c6a8b3f47e2a9c4d7b1e0f3a6c2"  # noqa: S105 - public demo value, see docstring
