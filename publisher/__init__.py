"""Publish per-topic RSS and Atom feeds and an HTML email digest from article documents."""

__version__ = "0.1.0"
