"""GTFS-Flex: locations.geojson (service zones) read into the canonical ``locations`` table, and written back."""
