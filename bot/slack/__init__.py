"""Slack-facing pure code: command parsing, escaping, paging state and Block Kit messages."""
