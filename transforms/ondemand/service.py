"""Build an on-demand spec's feed: resolve its area, write the GTFS-Flex files and the service tables."""

from __future__ import annotations

from pathlib import Path

from transforms.ondemand.area import resolve_area
from transforms.ondemand.build import OndemandFeed, build_feed

__all__ = ["build_from_section", "is_japanese"]


def is_japanese(*, timezone: str, profile: str) -> bool:
    """Return True if the service is in Japan (GTFS-JP agency files, JP public holidays)."""
    return timezone == "Asia/Tokyo" or profile == "gtfs-jp"


def build_from_section(section: dict, *, feed_id: str, name: str, timezone: str, profile: str, root: Path) -> OndemandFeed:
    """Return the GTFS-Flex feed of a checked ``ondemand:`` section. If its area cannot be read, raise InputError."""
    ja = is_japanese(timezone=timezone, profile=profile)
    area = resolve_area(section, root=root, default_name=name)
    return build_feed(section, area, feed_id=feed_id, name=name, timezone=timezone, country="JP" if ja else None, japanese=ja)
