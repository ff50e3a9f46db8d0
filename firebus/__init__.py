"""firebus core: what producers, processors and consumers all share.

Settings, the units registry, the topic registry, the Avro contracts and codec, signatures, errors and logging.
The event models live in :mod:`firebus.events` and :mod:`firebus.records`; what differs by event type (names,
headlines, SMS templates, CAP mapping, per-type rule facts) in the event catalogue, :mod:`firebus.catalogue`.
"""
