"""Kind ``ondemand``: an on-demand service (デマンド交通) declared in its spec, turned into a GTFS-Flex feed.

spec.py checks the ``ondemand:`` section; build.py writes the feed (locations.geojson, location groups,
booking rules, stop_times windows, calendar, GTFS-JP agency files) and the service tables the marts read.
"""
