"""Consumer adapters: portal, SMS and archive sinks."""
