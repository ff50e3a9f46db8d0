"""Field-level redaction for tiered sharing (按权限分级共享), driven by the contract rather than by code lists.

A schema field tagged ``"firebus.min_audience": "members" | "hq"`` must not reach a wider tier: for that tier its
value is replaced by the field's Avro default, so the redacted record still fits the same schema and encodes with
the same fingerprint. Below HQ a reviewer may name extra paths to empty (``ReviewDecision.redactions``). The HQ
tier sees everything.

Paths are the ones :attr:`firebus.contracts.Contract.fields` uses: dotted field names, ``[]`` for each array
item, ``{}`` for each map value (``nearby_resources[].lat``). A ``None`` value (a nullable union left empty) has
nothing below it to redact.

Every field's path, tag and default (as the Python value fastavro decodes) comes with the contract. Redaction runs
for every event and every tier, so what it builds from them — the hidden fields and their path tries per tier — is
worked out once per contract (:meth:`RedactionPlan.for_contract`).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from firebus.contracts import Contract, FieldInfo
from firebus.events import Audience

__all__ = ["FieldInfo", "Redacted", "RedactionPlan", "redact"]

_STEP = re.compile(r"\[\]|\{\}|[^.\[\]{}]+")
_BELOW_HQ = (Audience.PUBLIC, Audience.MEMBERS)


class Redacted(NamedTuple):
    """A record as one tier may see it, and the paths (sorted) whose value redaction changed."""

    record: dict[str, Any]
    redacted_fields: tuple[str, ...]


@dataclass
class _Node:
    """Trie of paths over a value: replace it (``replace``), or descend by field name, ``[]`` or ``{}``."""

    replace: FieldInfo | None = None
    children: dict[str, _Node] = field(default_factory=dict)


def _trie(fields: Iterable[FieldInfo]) -> _Node:
    root = _Node()
    for info in fields:
        node = root
        for step in _STEP.findall(info.path):
            node = node.children.setdefault(step, _Node())
        node.replace = info
    return root


@dataclass(frozen=True)
class RedactionPlan:
    """Everything redaction of one contract needs: every field by path, and the tagged ones per tier below HQ."""

    fields: Mapping[str, FieldInfo]
    hidden: Mapping[Audience, tuple[FieldInfo, ...]]
    _tries: Mapping[Audience, _Node] = field(repr=False)

    @classmethod
    def for_contract(cls, contract: Contract) -> RedactionPlan:
        """The plan of ``contract``, computed once per contract object."""
        cached = _PLANS.get(id(contract))
        if cached is not None and cached[0] is contract:
            return cached[1]
        fields = contract.fields
        hidden = {tier: tuple(f for f in fields.values() if f.hidden_from(tier)) for tier in _BELOW_HQ}
        plan = cls(fields, hidden, {tier: _trie(hidden[tier]) for tier in _BELOW_HQ})
        _PLANS[id(contract)] = (contract, plan)
        return plan

    def checked(self, paths: Iterable[str]) -> list[FieldInfo]:
        """The fields ``paths`` name; ``ValueError`` for a path that is not a field with a default."""
        found = []
        for path in paths:
            info = self.fields.get(path)
            if info is None:
                raise ValueError(f"redaction path {path!r} is not a field of this schema")
            if not info.has_default:
                raise ValueError(f"redaction path {path!r} names a field without a default to redact to")
            found.append(info)
        return found

    def apply(self, record: Mapping[str, Any], tier: Audience, extra_paths: Sequence[str] = ()) -> Redacted:
        """See :func:`redact`; ``extra_paths`` are checked at every tier, HQ included."""
        extra = self.checked(extra_paths)
        if tier is Audience.HQ:
            return Redacted(dict(record), ())
        root = _trie([*self.hidden[tier], *extra]) if extra else self._tries[tier]
        changed: set[str] = set()
        redacted = _apply(record, root, changed)
        return Redacted(dict(record) if redacted is record else redacted, tuple(sorted(changed)))


_PLANS: dict[int, tuple[Contract, RedactionPlan]] = {}
"""Plans by contract identity; the contract is kept so its id cannot be reused by another object."""


def _apply(value: Any, node: _Node, changed: set[str]) -> Any:
    """``value`` with ``node``'s paths redacted: the very same object when nothing below it changed."""
    if node.replace is not None:
        default = node.replace.default
        if type(value) is type(default) and value == default:
            return value
        changed.add(node.replace.path)
        return copy.deepcopy(default)
    if value is None or not node.children:
        return value
    if isinstance(value, list):
        items = [_apply(item, node.children["[]"], changed) for item in value]
        return items if any(new is not old for new, old in zip(items, value, strict=True)) else value
    if "{}" in node.children:
        entries = {key: _apply(item, node.children["{}"], changed) for key, item in value.items()}
        return entries if any(entries[key] is not item for key, item in value.items()) else value
    result = value
    for key, child in node.children.items():
        if key in value:  # absent: the value is another branch of a union of records
            new = _apply(value[key], child, changed)
            if new is not value[key]:
                result = dict(value) if result is value else result
                result[key] = new
    return result


def redact(contract: Contract, record: Mapping[str, Any], tier: Audience, extra_paths: Sequence[str] = ()) -> Redacted:
    """``record`` as ``tier`` may see it: fields tagged for a narrower tier and, below HQ, ``extra_paths`` reset to
    their schema defaults. The input is never mutated; only what changes is copied."""
    return RedactionPlan.for_contract(contract).apply(record, tier, extra_paths)
