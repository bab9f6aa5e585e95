"""Protobuf timestamps, in a module of their own: the services, the relay and the daemon all send
them, and the relay and the daemon must not import the service layer."""

from __future__ import annotations

from google.protobuf import timestamp_pb2


def now_timestamp() -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.GetCurrentTime()
    return stamp


def timestamp_at(seconds: float) -> timestamp_pb2.Timestamp:
    """The moment `seconds` after the epoch (as `time.time()` counts them)."""
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(round(seconds * 1e9))
    return stamp
