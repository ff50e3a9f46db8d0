"""Field-level redaction for tiered sharing (按权限分级共享), driven by the contract rather than by code lists.

A schema field tagged ``"firebus.min_audience": "members" | "hq"`` must not reach a wider tier: for that tier its
value is replaced by the field's Avro default, so the redacted record still fits the same schema and encodes with
the same fingerprint. Below HQ a reviewer may name extra paths to empty (``ReviewDecision.redactions``). The HQ
tier sees everything.

Paths are the ones :attr:`firebus.contracts.Contract.audience_tags` uses: dotted field names, ``[]`` for each array
item, ``{}`` for each map value (``nearby_resources[].lat``). A ``None`` value (a nullable union left empty) has
nothing below it to redact.

Redaction runs for every event and every tier, so everything that depends only on the contract — every field's
path, tag and default (as the Python value fastavro decodes) — is worked out once per contract
(:meth:`RedactionPlan.for_contract`).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple
from uuid import UUID

from firebus.contracts import MIN_AUDIENCE_ATTR, Contract, JsonSchema
from firebus.events import Audience

__all__ = ["FieldInfo", "Redacted", "RedactionPlan", "field_paths", "redact"]

_NO_DEFAULT: Any = object()
_STEP = re.compile(r"\[\]|\{\}|[^.\[\]{}]+")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_BELOW_HQ = (Audience.PUBLIC, Audience.MEMBERS)


class Redacted(NamedTuple):
    """A record as one tier may see it, and the paths (sorted) whose value redaction changed."""

    record: dict[str, Any]
    redacted_fields: tuple[str, ...]


@dataclass(frozen=True)
class FieldInfo:
    """One addressable field: its path, its minimum audience (``None``: untagged) and its decoded default."""

    path: str
    min_audience: Audience | None
    default: Any = _NO_DEFAULT

    @property
    def has_default(self) -> bool:
        return self.default is not _NO_DEFAULT

    def hidden_from(self, tier: Audience) -> bool:
        return self.min_audience is not None and self.min_audience.rank > tier.rank


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
        fields = {info.path: info for info in _walk_fields(contract.schema)}
        for path, tag in contract.audience_tags.items():  # the stricter tag wins should the two ever differ
            current = fields[path].min_audience
            if current is None or current.rank < tag.rank:
                fields[path] = replace(fields[path], min_audience=tag)
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


def field_paths(contract: Contract) -> frozenset[str]:
    """Every addressable field path of ``contract``, e.g. to validate a reviewer's redactions."""
    return frozenset(RedactionPlan.for_contract(contract).fields)


# --- reading the schema --------------------------------------------------------------------------------------


def _walk_fields(schema: JsonSchema) -> list[FieldInfo]:
    """Every field of ``schema`` in document order, named types resolved as they are met."""
    named: dict[str, JsonSchema] = {}
    found: list[FieldInfo] = []

    def walk(node: JsonSchema, path: str, namespace: str, inside: frozenset[str]) -> None:
        node = _resolve(node, named, namespace)
        if isinstance(node, list):
            for branch in node:
                walk(branch, path, namespace, inside)
            return
        if not isinstance(node, dict):
            return
        kind = node["type"]
        if kind in ("record", "enum", "fixed"):
            full = _full_name(node["name"], node.get("namespace", namespace))
            named[full] = node
            if kind == "record" and full not in inside:  # a recursive record would have endless paths
                for fld in node["fields"]:
                    _field(fld, path, full, inside | {full})
        elif kind == "array":
            walk(node["items"], f"{path}[]", namespace, inside)
        elif kind == "map":
            walk(node["values"], f"{path}{{}}", namespace, inside)

    def _field(fld: Mapping[str, Any], path: str, record: str, inside: frozenset[str]) -> None:
        namespace = record.rpartition(".")[0]
        field_path = f"{path}.{fld['name']}" if path else fld["name"]
        walk(fld["type"], field_path, namespace, inside)  # first: it may define named types the default uses
        default = _decoded(fld["type"], fld["default"], named, namespace) if "default" in fld else _NO_DEFAULT
        tag = fld.get(MIN_AUDIENCE_ATTR)
        found.append(FieldInfo(field_path, Audience(tag) if tag is not None else None, default))

    walk(schema, "", "", frozenset())
    return found


def _full_name(name: str, namespace: str) -> str:
    return name if "." in name or not namespace else f"{namespace}.{name}"


def _resolve(node: JsonSchema, named: Mapping[str, JsonSchema], namespace: str) -> JsonSchema:
    """A named-type reference (or a ``{"type": <schema>}`` wrapper) replaced by the schema it stands for."""
    if isinstance(node, str):
        return named.get(_full_name(node, namespace), named.get(node, node))
    if isinstance(node, dict):
        inner = node["type"]
        if not isinstance(inner, str) or _full_name(inner, namespace) in named or inner in named:
            return _resolve(inner, named, namespace)
    return node


def _decoded(schema: JsonSchema, default: Any, named: Mapping[str, JsonSchema], namespace: str) -> Any:
    """A JSON default as the Python value fastavro decodes for ``schema`` (a union's default is its first branch)."""
    schema = _resolve(schema, named, namespace)
    if isinstance(schema, list):
        return _decoded(schema[0], default, named, namespace)
    kind = schema["type"] if isinstance(schema, dict) else schema
    logical = schema.get("logicalType") if isinstance(schema, dict) else None
    value = default
    if kind in ("bytes", "fixed"):
        value = default.encode("latin-1")
    elif kind in ("float", "double"):
        value = float(default)
    elif logical == "uuid":
        value = UUID(default)
    elif logical == "timestamp-millis":
        value = _EPOCH + timedelta(milliseconds=default)
    elif kind == "array":
        value = [_decoded(schema["items"], item, named, namespace) for item in default]
    elif kind == "map":
        value = {key: _decoded(schema["values"], item, named, namespace) for key, item in default.items()}
    elif kind == "record":
        value = {
            fld["name"]: _decoded(fld["type"], default.get(fld["name"], fld.get("default")), named, namespace)
            for fld in schema["fields"]
        }
    return value
