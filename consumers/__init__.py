"""Consumer adapters: the sinks that deliver what is cleared (portal, SMS, archive), under one runner."""

from consumers._runner import Delivery, Outage, Sink, SinkRunner, SinkStats
from consumers._supervised import SinkState, SinkSupervisor, restart_delay

__all__ = ["Delivery", "Outage", "Sink", "SinkRunner", "SinkState", "SinkStats", "SinkSupervisor", "restart_delay"]
