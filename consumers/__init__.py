"""Consumer adapters: the sinks that deliver what is cleared (portal, SMS, archive), under one runner."""

from consumers._runner import Delivery, PoisonRecordError, Sink, SinkRunner, SinkStats, SinkUnavailableError

__all__ = ["Delivery", "PoisonRecordError", "Sink", "SinkRunner", "SinkStats", "SinkUnavailableError"]
