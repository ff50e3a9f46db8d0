"""The public surface of consumers.sms is deliberate."""

from __future__ import annotations

import consumers.sms


def test_sms_all_is_sorted_and_importable() -> None:
    """consumers.sms.__all__ is sorted, has no duplicates, and every name resolves."""
    names = consumers.sms.__all__
    assert names == sorted(set(names))
    assert all(hasattr(consumers.sms, name) for name in names)
    assert "SmsSink" in names
