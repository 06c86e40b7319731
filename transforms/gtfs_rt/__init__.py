"""GTFS-Realtime: the `gtfs-rt` spec kind (spec.py) and the parse of snapshots into lake tables (parse.py).

Pure Python (protobuf with the upb backend, pyarrow); the archiver, the hourly step and the
warehouse publish are in noriba/rt.py.
"""
