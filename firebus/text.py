"""Text hygiene as a contract rule: every string a record carries must be safe for every reader downstream.

Each string value and each map key at a text field of a contract (see :attr:`FieldInfo.text
<firebus.contracts.FieldInfo.text>`) must

* contain no C0 control character but tab and newline (so no NUL, no carriage return), no DEL and no C1 control;
* contain no bidirectional embedding, override or isolate control (U+202A–U+202E, U+2066–U+2069), which reverse
  text on the board and in CAP;
* contain no noncharacter (U+FDD0–U+FDEF and the last two code points of every plane, U+FFFE and U+FFFF among
  them: XML 1.0 forbids those two, HTML5 parsers report all) and no surrogate code point (not text; UTF-8 cannot
  carry it);
* be in Unicode normal form NFC, so equal text is equal code points (search, deduplication, signatures);
* respect the field's ``firebus.max_length`` / ``firebus.min_length`` (code points) and match its
  ``firebus.pattern`` in full.

Text that passes is well-formed in Atom and CAP XML and in HTML (``tests/consumers/test_hostile_text.py`` proves it
for every text field of every event type). :func:`text_problems` runs on the processors' hot path, so the checks of
a contract are compiled once, into closures that visit only the fields that hold text.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any

from firebus.avro_schema import Array, Map, Node, Primitive, Record, SchemaTree, Union, join_path
from firebus.contracts import Contract, FieldInfo
from firebus.errors import Problem

__all__ = ["FORBIDDEN_CHARACTERS", "nfc", "text_problems"]

_NONCHARACTERS = "\ufdd0-\ufdef" + "".join(
    f"{chr(plane << 16 | 0xFFFE)}{chr(plane << 16 | 0xFFFF)}" for plane in range(17)
)
FORBIDDEN_CHARACTERS = re.compile(
    f"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff{_NONCHARACTERS}]"
)
"""Every code point no text field may contain."""

_Check = Callable[[Any, str, list[Problem]], None]
"""Checks one value found at a (shown) path, adding what is wrong to the list."""


def text_problems(contract: Contract, record: Mapping[str, Any]) -> list[Problem]:
    """Every text hygiene problem of ``record`` (as decoded, or as a model dumps it) under ``contract``, each naming
    its field with array indexes (``body.forces[1].equipment[0]``); empty when all text is clean."""
    problems: list[Problem] = []
    check = _compiled(contract)
    if check is not None:
        check(record, "", problems)
    return problems


def nfc(value: Any) -> Any:
    """``value`` with every string in it (map keys too) in Unicode NFC; lists and dicts are copied, the rest kept."""
    if isinstance(value, str):
        return value if value.isascii() else unicodedata.normalize("NFC", value)
    if isinstance(value, list):
        return [nfc(item) for item in value]
    if isinstance(value, dict):
        return {nfc(key): nfc(item) for key, item in value.items()}
    return value


# --- one string ------------------------------------------------------------------------------------------------


def _describe(character: str) -> str:
    code = ord(character)
    if 0xD800 <= code <= 0xDFFF:
        kind = "surrogate code point"
    elif 0x202A <= code <= 0x202E or 0x2066 <= code <= 0x2069:
        kind = "bidirectional control"
    elif code <= 0x9F:
        kind = "control character"
    else:
        kind = "noncharacter"
    return f"{kind} U+{code:04X}"


def _string_check(info: FieldInfo, *, key: bool = False) -> _Check:
    """The check of each string at ``info``'s path (``key``: the keys of a map there)."""
    maximum = info.max_length
    minimum = info.min_length
    pattern = info.pattern
    what = "key " if key else ""

    def check(value: Any, path: str, problems: list[Problem]) -> None:
        if not isinstance(value, str):
            return
        # A printable string has no control (Cc), format (Cf, the bidi controls), surrogate (Cs) or unassigned (Cn,
        # the noncharacters) code point, so it needs no search; most strings are printable.
        bad = None if value.isprintable() else FORBIDDEN_CHARACTERS.search(value)
        if bad is not None:
            more = len(FORBIDDEN_CHARACTERS.findall(value)) - 1
            also = f" (and {more} more forbidden)" if more else ""
            problems.append(Problem(path, f"{what}{_describe(bad.group())} at index {bad.start()}{also}"))
        if not value.isascii() and not unicodedata.is_normalized("NFC", value):
            problems.append(Problem(path, f"{what}not in Unicode normal form NFC"))
        length = len(value)
        if maximum is not None and length > maximum:
            problems.append(Problem(path, f"{what}{length} characters, more than the limit of {maximum}"))
        if length < minimum:
            problems.append(Problem(path, f"{what}{length} characters, fewer than the minimum of {minimum}"))
        if pattern is not None and pattern.fullmatch(value) is None:
            problems.append(Problem(path, f"{what}does not match {pattern.pattern}"))

    return check


# --- compiling a contract --------------------------------------------------------------------------------------

_COMPILED: dict[int, tuple[Contract, _Check | None]] = {}


def _compiled(contract: Contract) -> _Check | None:
    """The check of a whole record of ``contract`` (None: it holds no text), compiled once per contract object."""
    cached = _COMPILED.get(id(contract))
    if cached is not None and cached[0] is contract:
        return cached[1]
    check = _Compiler(contract.tree, contract.fields).record_check(contract.tree.root, "", frozenset())
    _COMPILED[id(contract)] = (contract, check)
    return check


class _Compiler:
    def __init__(self, tree: SchemaTree, fields: Mapping[str, FieldInfo]) -> None:
        self.tree = tree
        self.fields = fields
        self.building: dict[str, list[_Check | None]] = {}
        """Each record whose check is being built, and where that check will be once built."""

    def record_check(self, node: Node, path: str, inside: frozenset[str]) -> _Check | None:
        record = self.tree.resolve(node)
        if not isinstance(record, Record):
            return None
        if record.name in inside:
            # A record inside itself (a recursive schema): the check being built applies again at this depth.
            built = self.building[record.name]

            def check_again(value: Any, shown: str, problems: list[Problem]) -> None:
                if built[0] is not None:
                    built[0](value, shown, problems)

            return check_again
        built = self.building[record.name] = [None]
        inside = inside | {record.name}
        checks = []
        for fld in record.fields:
            field_path = join_path(path, fld.name)
            check = self.value_check(fld.schema, self.fields[field_path], field_path, inside)
            if check is not None:
                checks.append((fld.name, check))
        if not checks:
            return None

        def check_record(value: Any, shown: str, problems: list[Problem]) -> None:
            if not isinstance(value, Mapping):
                return
            for name, check in checks:
                item = value.get(name)
                if item is not None:
                    check(item, f"{shown}.{name}" if shown else name, problems)

        built[0] = check_record
        return check_record

    def value_check(self, node: Node, info: FieldInfo, path: str, inside: frozenset[str]) -> _Check | None:
        """The check of a value at ``path``, a part of the field ``info`` (itself, an array item, a map value)."""
        resolved = self.tree.resolve(node)
        if isinstance(resolved, Primitive):
            return _string_check(info) if resolved.name == "string" and resolved.logical != "uuid" else None
        if isinstance(resolved, Record):
            return self.record_check(resolved, path, inside)
        if isinstance(resolved, Array):
            return _array_check(self.value_check(resolved.items, info, f"{path}[]", inside))
        if isinstance(resolved, Map):
            values = self.value_check(resolved.values, info, f"{path}{{}}", inside)
            return _map_check(_string_check(info, key=True), values)
        if isinstance(resolved, Union):
            return _union_check([self.value_check(branch, info, path, inside) for branch in resolved.branches])
        return None


def _array_check(item_check: _Check | None) -> _Check | None:
    if item_check is None:
        return None

    def check_array(value: Any, shown: str, problems: list[Problem]) -> None:
        if isinstance(value, list):
            for index, item in enumerate(value):
                if item is not None:
                    item_check(item, f"{shown}[{index}]", problems)

    return check_array


def _map_check(key_check: _Check, value_check: _Check | None) -> _Check:
    def check_map(value: Any, shown: str, problems: list[Problem]) -> None:
        if isinstance(value, Mapping):
            for key, item in value.items():
                at = f"{shown}[{key!r}]"
                key_check(key, at, problems)
                if value_check is not None and item is not None:
                    value_check(item, at, problems)

    return check_map


def _union_check(branch_checks: list[_Check | None]) -> _Check | None:
    """Every branch's check applies to a value; each looks only at values of its own shape (str, list, mapping)."""
    checks = [check for check in branch_checks if check is not None]
    if len(checks) <= 1:
        return checks[0] if checks else None

    def check_union(value: Any, shown: str, problems: list[Problem]) -> None:
        for check in checks:
            check(value, shown, problems)

    return check_union
