"""Watches: one-shot alerts when a room's count or membership meets a condition, polled within the ZIM budget."""
