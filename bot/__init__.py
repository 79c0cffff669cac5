"""roomusers: see who is in a ZEGOCLOUD ZIM room without leaving Slack."""

__version__ = "0.1.0"
