"""Consumer adapters: the sinks that deliver what is cleared (portal, SMS, archive), under one runner."""

from consumers._runner import Delivery, Sink, SinkRunner, SinkStats

__all__ = ["Delivery", "Sink", "SinkRunner", "SinkStats"]
