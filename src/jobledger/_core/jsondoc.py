"""JSON documents as the ledger keeps them: strict I-JSON, size-limited, immutable.

A job's ``input``, ``state`` and every ``state_update`` pass through :func:`freeze`,
which checks them against RFC 7493 (I-JSON) and the configured :class:`Limits`
and turns them into read-only :class:`JsonObject` and :class:`JsonArray`
containers. Those behave like ``dict`` and ``list`` for reading and comparing,
refuse every mutation, and remember their encoded size and nesting depth so
that :func:`merge_patch` (RFC 7396) can share unchanged subtrees and check the
limits of its result without walking the whole document.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, NoReturn, Self, Union

import attrs

from jobledger._core.errors import InvalidJobDataError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

__all__ = [
    "DEFAULT_LIMITS",
    "HARD_MAX_DEPTH",
    "MAX_SAFE_INTEGER",
    "JsonArray",
    "JsonObject",
    "JsonValue",
    "Limits",
    "check_name",
    "check_text",
    "empty_object",
    "encoded_size",
    "freeze",
    "is_storable_key",
    "merge_patch",
    "thaw",
    "within_limits",
]

#: The largest integer magnitude I-JSON allows (RFC 7493, section 2.2).
MAX_SAFE_INTEGER = 2**53 - 1

#: No configured depth may exceed this: it keeps every recursive consumer
#: (merge patch, ``json`` encoders and decoders) far from Python's recursion limit.
HARD_MAX_DEPTH = 128

JsonValue = Union[None, bool, int, float, str, "JsonArray", "JsonObject"]


def _positive(_instance: object, attribute: attrs.Attribute[int], value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        msg = f"{attribute.name} must be a positive integer, not {value!r}"
        raise ValueError(msg)


def _depth_cap(_instance: object, _attribute: attrs.Attribute[int], value: object) -> None:
    if isinstance(value, int) and value > HARD_MAX_DEPTH:
        msg = f"max_depth must be at most {HARD_MAX_DEPTH}, not {value}"
        raise ValueError(msg)


#: The longest name the ledger itself writes: the built-in status ``completed``.
MIN_NAME_LENGTH = 9


def _fits_own_names(_instance: object, _attribute: attrs.Attribute[int], value: object) -> None:
    if isinstance(value, int) and value < MIN_NAME_LENGTH:
        msg = (
            f"max_name_length must be at least {MIN_NAME_LENGTH}, not {value}: the ledger "
            "writes the status 'completed' itself, and a job could never end"
        )
        raise ValueError(msg)


@attrs.frozen
class Limits:
    """The limits the ledger enforces on what it stores.

    Every limit has a default that suits most applications; pass your own
    ``Limits`` to :class:`~jobledger.Jobs` to change them.

    Attributes:
        max_depth: How deeply objects and arrays may nest in one JSON document
            (``{"a": [1]}`` has depth 2). Default 64, at most 128.
        max_bytes: The largest encoded size of one JSON document (``input``,
            ``state``, a ``state_update``, and the state that results from
            applying it), counted as compact UTF-8 JSON without escapes.
            Default 1 MiB.
        max_name_length: The longest ``service``, ``entity``, ``type``,
            ``status``, ``actor``, job id, ETag and request id, in characters. Default
            200, at least 9 (the status ``completed``); a
            :class:`~jobledger.Jobs` with its default id factory needs at
            least 36, the length of the job ids it makes.
        max_text_length: The longest ``display_name`` and ``description``, in
            characters. Default 10,000.
    """

    max_depth: int = attrs.field(default=64, validator=[_positive, _depth_cap])
    max_bytes: int = attrs.field(default=1_048_576, validator=_positive)
    max_name_length: int = attrs.field(default=200, validator=[_positive, _fits_own_names])
    max_text_length: int = attrs.field(default=10_000, validator=_positive)


DEFAULT_LIMITS = Limits()

# What command constructors freeze with: only the hard caps, so a command can
# be built before the limits of the ledger that will run it are known.
_COMMAND_LIMITS = Limits(max_depth=HARD_MAX_DEPTH, max_bytes=2**62)


def _read_only(self: object, *_args: object, **_kwargs: object) -> NoReturn:
    msg = (
        f"{type(self).__name__} is read-only: jobledger's JSON values never change; "
        "use jobledger.thaw(value) for a mutable copy"
    )
    raise TypeError(msg)


class JsonObject(dict[str, JsonValue]):
    """A read-only JSON object: reads and compares like a ``dict``, never changes.

    ``json.dumps`` accepts it, ``==`` compares it with plain dicts, and ``copy()``
    gives a shallow mutable ``dict``. Every mutating method raises ``TypeError``.
    Unlike a ``dict`` it is hashable, so jobs, commands and events holding it are too.
    Instances are made by the ledger; use :func:`thaw` for a mutable deep copy.
    """

    __slots__ = ("_depth", "_size")
    _size: int
    _depth: int

    def __init__(self, *_args: object, **_kwargs: object) -> None:
        _read_only(self)

    __setitem__ = _read_only
    __delitem__ = _read_only
    __ior__ = _read_only
    clear = _read_only
    pop = _read_only
    popitem = _read_only
    setdefault = _read_only
    update = _read_only

    def __hash__(self) -> int:  # type: ignore[override]  # read-only, so hashable
        return hash(frozenset(self.items()))

    def __reduce__(self) -> tuple[Callable[[dict[str, JsonValue]], JsonObject], tuple[Any]]:
        return (_object_from, (dict(self),))

    def __copy__(self) -> Self:
        return self

    def __deepcopy__(self, _memo: object) -> Self:
        return self


class JsonArray(list[JsonValue]):
    """A read-only JSON array: reads and compares like a ``list``, never changes.

    ``json.dumps`` accepts it, ``==`` compares it with plain lists, and ``copy()``
    gives a shallow mutable ``list``. Every mutating method raises ``TypeError``.
    Unlike a ``list`` it is hashable.
    """

    __slots__ = ("_depth", "_size")
    _size: int
    _depth: int

    def __init__(self, *_args: object, **_kwargs: object) -> None:
        _read_only(self)

    __setitem__ = _read_only
    __delitem__ = _read_only
    __iadd__ = _read_only
    __imul__ = _read_only
    append = _read_only
    extend = _read_only
    insert = _read_only
    pop = _read_only
    remove = _read_only
    reverse = _read_only
    sort = _read_only
    clear = _read_only

    def __hash__(self) -> int:  # type: ignore[override]  # read-only, so hashable
        return hash(tuple(self))

    def __reduce__(self) -> tuple[Callable[[list[JsonValue]], JsonArray], tuple[Any]]:
        return (_array_from, (list(self),))

    def __copy__(self) -> Self:
        return self

    def __deepcopy__(self, _memo: object) -> Self:
        return self


if not TYPE_CHECKING:
    # At run time, resolve the alias's forward references here, once, so that
    # typing.get_type_hints (and so cattrs) can resolve it from any module.
    JsonValue = Union[None, bool, int, float, str, JsonArray, JsonObject]  # noqa: UP007


def _scalar_size(value: JsonValue) -> int:  # noqa: PLR0911  (one return per kind of value)
    """Encoded size of an already-checked scalar, or a container's cached size."""
    # By exact type, the most frequent first: a frozen value holds exact types only.
    kind = type(value)
    if kind is int or kind is float:
        return len(repr(value))
    if kind is str:
        if value.isascii():  # type: ignore[union-attr]
            return len(value) + 2  # type: ignore[arg-type]
        return len(value.encode("utf-8", "surrogatepass")) + 2  # type: ignore[union-attr]
    if kind is JsonObject or kind is JsonArray:
        return value._size  # type: ignore[union-attr]  # noqa: SLF001  (this module's own cache)
    if value is None or value is True:
        return 4
    if value is False:
        return 5
    return len(repr(value))


def encoded_size(value: JsonValue) -> int:
    """The size of ``value``'s JSON text as the limits count it; constant time once frozen.

    >>> encoded_size(freeze({"done": 10}, field="state"))
    11
    """
    return _scalar_size(value)


def _depth_of(value: JsonValue) -> int:
    if isinstance(value, (JsonObject, JsonArray)):
        return value._depth  # noqa: SLF001
    return 0


def _object_from(members: dict[str, JsonValue]) -> JsonObject:
    """Wrap already-frozen members in a JsonObject, computing its size and depth."""
    obj = dict.__new__(JsonObject)
    dict.__init__(obj, members)
    size = 2 + max(len(members) - 1, 0)
    depth = 0
    for key, value in members.items():
        size += len(key.encode("utf-8", "surrogatepass")) + 3 + _scalar_size(value)
        depth = max(depth, _depth_of(value))
    obj._size = size  # noqa: SLF001
    obj._depth = depth + 1  # noqa: SLF001
    return obj


def _array_from(items: list[JsonValue]) -> JsonArray:
    """Wrap already-frozen items in a JsonArray, computing its size and depth."""
    arr = list.__new__(JsonArray)
    list.__init__(arr, items)
    size = 2 + max(len(items) - 1, 0)
    depth = 0
    for value in items:
        size += _scalar_size(value)
        depth = max(depth, _depth_of(value))
    arr._size = size  # noqa: SLF001
    arr._depth = depth + 1  # noqa: SLF001
    return arr


_EMPTY_OBJECT = _object_from({})


def empty_object() -> JsonObject:
    """The empty JSON object ``{}`` (one shared, read-only instance)."""
    return _EMPTY_OBJECT


def _pointer(parts: Iterable[str | int]) -> str:
    """The JSON Pointer of ``parts``; characters UTF-8 cannot carry are shown escaped."""
    pointer = "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts)
    return pointer.encode("utf-8", "backslashreplace").decode("utf-8")


class _Frame:
    """One container being frozen: where it is, what it has so far."""

    __slots__ = ("depth", "entries", "is_object", "key", "members")

    def __init__(self, source: object, key: str | int, depth: int) -> None:
        self.key = key
        self.depth = depth
        self.is_object = isinstance(source, Mapping)
        self.entries: Iterator[tuple[object, object]]
        if self.is_object:
            assert isinstance(source, Mapping)  # noqa: S101  (narrowing for the type checker)
            self.entries = iter(source.items())
            self.members: dict[str, JsonValue] | list[JsonValue] = {}
        else:
            assert isinstance(source, (list, tuple))  # noqa: S101
            self.entries = enumerate(source)
            self.members = []

    def add(self, key: str | int, value: JsonValue) -> None:
        if self.is_object:
            self.members[key] = value  # type: ignore[index]
        else:
            self.members.append(value)  # type: ignore[union-attr]

    def close(self) -> JsonObject | JsonArray:
        if self.is_object:
            return _object_from(self.members)  # type: ignore[arg-type]
        return _array_from(self.members)  # type: ignore[arg-type]


class _Freezer:
    """Freezes one document, iteratively, so no nesting depth can recurse."""

    __slots__ = ("budget", "field", "limits", "stack")

    def __init__(self, field: str, limits: Limits) -> None:
        self.field = field
        self.limits = limits
        self.stack: list[_Frame] = []
        self.budget = limits.max_bytes

    def error(self, key: str | int | None, reason: str) -> InvalidJobDataError:
        """The error for the value at ``key`` of the innermost open container."""
        parts: list[str | int] = [frame.key for frame in self.stack[1:]]
        if key is not None:
            parts.append(key)
        return InvalidJobDataError(self.field, _pointer(parts), reason)

    def spend(self, size: int) -> None:
        self.budget -= size
        if self.budget < 0:
            self.stack.clear()
            raise self.error(None, f"the document is larger than {self.limits.max_bytes} bytes")

    def string(self, value: str, key: str | int | None, what: str = "string") -> str:
        if type(value) is not str:
            value = str.__str__(value)
        try:
            encoded = value.encode("utf-8")
        except UnicodeEncodeError as err:
            position = err.start
        else:
            position = -1
        if position >= 0:
            raise self.error(key, f"{what} has a lone surrogate at character {position}")
        if "\x00" in value:
            raise self.error(key, f"{what} contains a NUL character (U+0000)")
        self.spend(len(encoded) + 2)
        return value

    def scalar(self, value: object, key: str | int | None) -> JsonValue:
        """Check a non-container value; return it frozen, or fail."""
        if value is None or value is True:
            self.spend(4)
            return value
        if value is False:
            self.spend(5)
            return value
        if isinstance(value, str):
            return self.string(value, key)
        if isinstance(value, int) and not isinstance(value, bool):
            if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
                raise self.error(
                    key,
                    f"an integer of {value.bit_length()} bits is outside the I-JSON range "
                    "-(2**53-1)..2**53-1; send it as a string",
                )
            value = int(value)
            self.spend(len(repr(value)))
            return value
        if isinstance(value, float):
            if not math.isfinite(value):
                raise self.error(key, f"{value!r} is not a JSON number (numbers must be finite)")
            value = float(value)
            self.spend(len(repr(value)))
            return value
        raise self.error(key, f"a {type(value).__name__} is not a JSON value")

    def too_deep(self, key: str | int | None, value: JsonObject | JsonArray | None) -> NoReturn:
        """Raise the depth error for the container at ``key`` (already frozen: ``value``)."""
        parts: list[str | int] = [frame.key for frame in self.stack[1:]]
        if key is not None:
            parts.append(key)
        if value is not None:
            # An already-frozen subtree: point at its first container past the limit.
            parts.extend(_deep_parts(value, self.limits.max_depth - len(self.stack)))
        self.stack.clear()
        raise InvalidJobDataError(self.field, _pointer(parts), _depth_reason(self.limits))

    def cached(self, value: JsonObject | JsonArray, key: str | int | None, depth: int) -> JsonValue:
        if depth + value._depth - 1 > self.limits.max_depth:  # noqa: SLF001
            self.too_deep(key, value)
        self.spend(value._size)  # noqa: SLF001
        return value

    def freeze(self, value: object) -> JsonValue:
        if isinstance(value, (JsonObject, JsonArray)):
            return self.cached(value, None, 1)
        if not isinstance(value, (Mapping, list, tuple)):
            return self.scalar(value, None)
        self.spend(2)
        self.stack.append(_Frame(value, "", 1))
        while True:
            frame = self.stack[-1]
            entry = next(frame.entries, None)
            if entry is not None:
                self.member(frame, *entry)
                continue
            done = frame.close()
            self.stack.pop()
            if not self.stack:
                return done
            self.stack[-1].add(frame.key, done)

    def member(self, frame: _Frame, key: object, child: object) -> None:
        """Freeze one member of ``frame``'s container, or open a frame for it."""
        if frame.is_object:
            if not isinstance(key, str):
                raise self.error(None, f"object keys must be strings, not {type(key).__name__}")
            key = self.string(key, key, "key")
            self.spend(1)
        if frame.members:
            self.spend(1)
        assert isinstance(key, (str, int))  # noqa: S101  (narrowing: a key or an index)
        if isinstance(child, (JsonObject, JsonArray)):
            frame.add(key, self.cached(child, key, frame.depth + 1))
        elif isinstance(child, (Mapping, list, tuple)):
            if frame.depth + 1 > self.limits.max_depth:
                self.too_deep(key, None)
            self.spend(2)
            self.stack.append(_Frame(child, key, frame.depth + 1))
        else:
            frame.add(key, self.scalar(child, key))


def freeze(value: object, *, field: str, limits: Limits = DEFAULT_LIMITS) -> JsonValue:
    """Check ``value`` against the I-JSON rules and ``limits``; return it read-only.

    Objects may be any ``Mapping`` with string keys, arrays any ``list`` or
    ``tuple``. The result shares nothing mutable with ``value``. A value this
    function (or the ledger) froze already is returned as it is once it keeps
    ``limits``, in constant time: freeze a value used in many commands once.

    Raises:
        InvalidJobDataError: naming ``field`` and the JSON Pointer of the first
            offending value: a non-finite number, an integer beyond +-(2**53-1),
            a non-string key, a string with a lone surrogate or NUL, a value of
            another type, nesting deeper than ``limits.max_depth``, or a document
            larger than ``limits.max_bytes``.

    >>> freeze({"done": 1, "tags": ["a"]}, field="state")
    {'done': 1, 'tags': ['a']}
    >>> freeze({"ratio": float("nan")}, field="state")
    Traceback (most recent call last):
    ...
    jobledger._core.errors.InvalidJobDataError: invalid state at /ratio: nan is not a JSON number (numbers must be finite)
    """  # noqa: E501
    kind = type(value)
    if kind is dict or kind is list:
        quick = _quick(value, 1, limits.max_depth, limits.max_bytes)  # type: ignore[arg-type]
        if quick is not _UNUSUAL:
            return quick
    elif (kind is JsonObject or kind is JsonArray) and within_limits(value, limits):  # type: ignore[arg-type]
        # Frozen already, so I-JSON already (only this module makes them): only
        # the limits are left, and the container knows its size and depth.
        return value  # type: ignore[return-value]
    return _Freezer(field, limits).freeze(value)


_isfinite = math.isfinite

# What _quick returns for anything it leaves to the _Freezer (compared by identity).
_UNUSUAL: JsonObject = dict.__new__(JsonObject)


def _quick_text(text: str) -> int:
    """The encoded size of a string the _Freezer would accept, else -1."""
    if text.isascii():
        size = len(text) + 2
    else:
        try:
            size = len(text.encode("utf-8")) + 2
        except UnicodeEncodeError:
            return -1
    return -1 if "\x00" in text else size


_CONSTANT_SIZES: dict[object, int] = {None: 4, True: 4, False: 5}


def _quick_scalar(value: object) -> int:
    """The encoded size of a plain scalar the _Freezer would accept unchanged, else -1."""
    kind = type(value)
    if kind is str:
        return _quick_text(value)  # type: ignore[arg-type]
    if kind is int:
        fits = -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER  # type: ignore[operator]
    elif kind is float:
        fits = math.isfinite(value)  # type: ignore[arg-type]
    else:
        return _CONSTANT_SIZES.get(value, -1) if kind is bool or value is None else -1
    return len(repr(value)) if fits else -1


def _quick_member(member: object, depth: int, max_depth: int) -> tuple[JsonValue, int, int] | None:
    """A member of a container at ``depth``, no plain dict or list (:func:`_quick` takes those).

    Its frozen value, its size and its depth; ``None`` if unusual.
    """
    size = _quick_scalar(member)
    if size >= 0:
        return member, size, 0  # type: ignore[return-value]
    kind = type(member)
    frozen: JsonObject | JsonArray
    if kind is JsonObject or kind is JsonArray:
        frozen = member  # type: ignore[assignment]
        if depth + frozen._depth > max_depth:  # noqa: SLF001
            return None
    elif isinstance(member, str):
        # A str subclass (a StrEnum member, say) stands for its plain text, as
        # the _Freezer makes it: taken here, it keeps the document on this path.
        plain = str.__str__(member)
        size = _quick_text(plain)
        return None if size < 0 else (plain, size, 0)
    else:
        return None
    return frozen, frozen._size, frozen._depth  # noqa: SLF001


def _quick(  # noqa: C901, PLR0911, PLR0912  (the common members inline, on purpose: per command)
    value: dict[object, object] | list[object], depth: int, max_depth: int, max_bytes: int
) -> JsonObject | JsonArray:
    """Freeze plain JSON (exact dicts, lists, strings, ints, floats) in one pass.

    The common case, made fast: anything the :class:`_Freezer` would convert,
    refuse or report on (subclasses, tuples, mappings, bad values, limits
    reached) returns ``_UNUSUAL`` instead, and the _Freezer does the work, so
    the result, and every error, is exactly the _Freezer's.
    """
    if depth > max_depth:
        return _UNUSUAL
    is_object = type(value) is dict
    entries = value.items() if is_object else enumerate(value)  # type: ignore[union-attr]
    size = 1 + (len(value) or 1)  # the brackets and the commas
    inner = 0
    replaced: list[tuple[object, JsonValue]] = []
    for key, member in entries:
        if is_object:
            if type(key) is str and key.isascii() and "\x00" not in key:
                size += len(key) + 3
            else:
                key_size = _quick_text(key) if type(key) is str else -1
                if key_size < 0:
                    return _UNUSUAL
                size += key_size + 1
        # The commonest members inline (numbers, ASCII strings, null, booleans): the rest below.
        kind = type(member)
        if (kind is int and -MAX_SAFE_INTEGER <= member <= MAX_SAFE_INTEGER) or (  # type: ignore[operator]
            kind is float and _isfinite(member)  # type: ignore[arg-type]
        ):
            size += len(repr(member))
            continue
        if kind is str and member.isascii() and "\x00" not in member:  # type: ignore[union-attr,operator]
            size += len(member) + 2  # type: ignore[arg-type]
            continue
        if member is None or member is True:
            size += 4
            continue
        if member is False:
            size += 5
            continue
        frozen: JsonValue
        if kind is dict or kind is list:  # a nested container, with no scalar to try first
            frozen = _quick(member, depth + 1, max_depth, max_bytes)  # type: ignore[arg-type]
            if frozen is _UNUSUAL:
                return _UNUSUAL
            member_size, member_depth = frozen._size, frozen._depth  # noqa: SLF001
        else:
            quick = _quick_member(member, depth, max_depth)
            if quick is None:
                return _UNUSUAL
            frozen, member_size, member_depth = quick
        if frozen is not member:
            replaced.append((key, frozen))
        size += member_size
        inner = max(inner, member_depth)
        if size > max_bytes:
            return _UNUSUAL
    if size > max_bytes:  # an empty container too has its brackets
        return _UNUSUAL
    return _quick_result(value, replaced, size, inner + 1)


def _quick_result(
    value: dict[object, object] | list[object],
    replaced: list[tuple[object, JsonValue]],
    size: int,
    depth: int,
) -> JsonObject | JsonArray:
    """The read-only copy of ``value``, with its frozen containers in place."""
    result: JsonObject | JsonArray
    if type(value) is dict:
        result = dict.__new__(JsonObject)
        dict.__init__(result, value)  # type: ignore[misc]
        for key, frozen in replaced:
            dict.__setitem__(result, key, frozen)  # type: ignore[misc]
    else:
        result = list.__new__(JsonArray)
        list.__init__(result, value)  # type: ignore[misc]
        for index, frozen in replaced:
            list.__setitem__(result, index, frozen)  # type: ignore[call-overload]
    result._size = size  # noqa: SLF001
    result._depth = depth  # noqa: SLF001
    return result


def freeze_for_command(value: object, *, field: str) -> JsonValue:
    """Freeze with only the hard caps; the ledger checks its own limits later.

    A value frozen already is returned as it is: it keeps the hard caps, since
    no :class:`Limits` allow deeper nesting, and no document that large fits
    in memory.
    """
    kind = type(value)
    if kind is JsonObject or kind is JsonArray:
        return value  # type: ignore[return-value]
    return freeze(value, field=field, limits=_COMMAND_LIMITS)


def within_limits(value: JsonObject | JsonArray, limits: Limits) -> bool:
    """Whether an already-frozen container keeps ``limits`` (:func:`check_limits` says why not)."""
    return value._depth <= limits.max_depth and value._size <= limits.max_bytes  # noqa: SLF001


def check_limits(value: JsonValue, *, field: str, limits: Limits) -> None:
    """Check an already-frozen document against ``limits`` in constant time.

    Raises:
        InvalidJobDataError: if it nests too deeply or is too large.
    """
    if _depth_of(value) > limits.max_depth:
        assert isinstance(value, (JsonObject, JsonArray))  # noqa: S101  (only containers nest)
        path = _pointer(_deep_parts(value, limits.max_depth))
        raise InvalidJobDataError(field, path, _depth_reason(limits))
    if _scalar_size(value) > limits.max_bytes:
        raise InvalidJobDataError(
            field, "", f"the document is larger than {limits.max_bytes} bytes"
        )


def _depth_reason(limits: Limits) -> str:
    if limits.max_depth == HARD_MAX_DEPTH:
        return f"nested deeper than {HARD_MAX_DEPTH} levels, the most jobledger accepts"
    return f"nested deeper than {limits.max_depth} levels"


def _deep_parts(value: JsonObject | JsonArray, max_depth: int) -> list[str | int]:
    """The keys from ``value`` down to its first container nested past ``max_depth``.

    ``value`` itself is at depth 1; an empty list means ``value`` is the one.
    It follows the cached depths, so it visits one path, not the document.
    """
    parts: list[str | int] = []
    level = 1
    node: JsonObject | JsonArray = value
    while level <= max_depth:
        entries = node.items() if isinstance(node, JsonObject) else enumerate(node)
        for key, member in entries:
            if isinstance(member, (JsonObject, JsonArray)) and level + member._depth > max_depth:  # noqa: SLF001
                parts.append(key)
                node = member
                break
        level += 1
    return parts


def merge_patch(target: JsonValue, patch: JsonValue) -> JsonValue:
    """Apply an RFC 7396 JSON Merge Patch to ``target``; return the result.

    Both must be frozen (see :func:`freeze`); neither is changed. Members the
    patch does not touch are shared with ``target``, so a small patch to a
    large state costs only the objects along the patched paths.

    >>> state = freeze({"a": "b", "c": {"d": "e", "f": "g"}}, field="state")
    >>> merge_patch(state, freeze({"a": "z", "c": {"f": None}}, field="patch"))
    {'a': 'z', 'c': {'d': 'e'}}
    """
    if not isinstance(patch, JsonObject):
        return patch
    if not isinstance(target, JsonObject):
        target = _EMPTY_OBJECT
    if patch._depth == 1 and target._depth == 1 and None not in dict.values(patch):  # noqa: SLF001
        return _merge_flat(target, patch)
    return _merge_objects(target, patch)


def _merge_objects(target: JsonObject, patch: JsonObject) -> JsonObject:  # noqa: C901  (hot: numbers inline)
    """:func:`merge_patch` of an object patch.

    The result is filled in place (through dict's own methods, which the
    read-only class hides), so the target's members are copied once. Its size
    and depth follow from the target's and from the members that change: a
    patch costs what it touches, not what the state holds. The loop is all the
    cost of a small patch, so it works out each key's size once and reads
    depths without helper calls.
    """
    merged = dict.__new__(JsonObject)
    dict.__init__(merged, target)
    members_size = target._size - 1 - (len(target) or 1)  # noqa: SLF001
    deepest = target._depth - 1  # noqa: SLF001  (the depth of the target's deepest members)
    depth = deepest + 1
    lost_deepest = False
    for key, value in patch.items():
        key_size = 3 + (len(key) if key.isascii() else len(key.encode("utf-8", "surrogatepass")))
        old = dict.get(merged, key, _ABSENT)
        old_depth = 0
        if old is not _ABSENT:
            old_kind = type(old)
            if old_kind is int or old_kind is float:  # the commonest, inline
                members_size -= key_size + len(repr(old))
            else:
                members_size -= key_size + _scalar_size(old)
                if old_kind is JsonObject or old_kind is JsonArray:
                    old_depth = old._depth  # noqa: SLF001
        if value is None:
            if old is not _ABSENT:
                dict.__delitem__(merged, key)
                # Only losing a member as deep as the deepest can make the result shallower.
                lost_deepest = lost_deepest or (old_depth > 0 and old_depth == deepest)
            continue
        new: JsonValue
        kind = type(value)
        if kind is int or kind is float:  # the commonest, inline
            dict.__setitem__(merged, key, value)
            members_size += key_size + len(repr(value))
            lost_deepest = lost_deepest or 0 < old_depth == deepest
            continue
        if kind is JsonObject:
            new = _merge_objects(old if type(old) is JsonObject else _EMPTY_OBJECT, value)  # type: ignore[arg-type]
            new_depth = new._depth  # noqa: SLF001
        else:
            new = value
            new_depth = value._depth if kind is JsonArray else 0  # type: ignore[union-attr]  # noqa: SLF001
        dict.__setitem__(merged, key, new)
        members_size += key_size + _scalar_size(new)
        lost_deepest = lost_deepest or new_depth < old_depth == deepest
        if new_depth >= depth:
            depth = new_depth + 1
    if lost_deepest:
        depth = 1 + max(map(_depth_of, merged.values()), default=0)
    merged._size = 1 + (len(merged) or 1) + members_size  # noqa: SLF001
    merged._depth = depth  # noqa: SLF001
    return merged


_ABSENT: Any = object()


def _merge_flat(target: JsonObject, patch: JsonObject) -> JsonObject:
    """:func:`_merge_objects` of the usual patch: scalars onto scalars, none removed.

    The result's members are the target's and the patch's, less the target's
    that the patch replaces (the only ones sized one by one), and it is flat.
    """
    merged = dict.__new__(JsonObject)
    dict.__init__(merged, target)
    members_size = target._size - 1 - (len(target) or 1)  # noqa: SLF001
    for key in patch:
        old = dict.get(target, key, _ABSENT)
        if old is not _ABSENT:
            key_size = 3 + (
                len(key) if key.isascii() else len(key.encode("utf-8", "surrogatepass"))
            )
            members_size -= key_size + (len(repr(old)) if type(old) is int else _scalar_size(old))
    dict.update(merged, patch)
    members_size += patch._size - 1 - (len(patch) or 1)  # noqa: SLF001
    merged._size = 1 + (len(merged) or 1) + members_size  # noqa: SLF001
    merged._depth = 1  # noqa: SLF001
    return merged


def thaw(value: JsonValue) -> Any:  # noqa: ANN401  (plain JSON: dict, list or a scalar)
    """Return a deep, mutable copy of a JSON value, made of plain dicts and lists.

    >>> state = freeze({"items": [1, 2]}, field="state")
    >>> plain = thaw(state)
    >>> plain["items"].append(3)
    >>> plain, state
    ({'items': [1, 2, 3]}, {'items': [1, 2]})
    """
    if isinstance(value, dict):
        return {key: thaw(member) for key, member in value.items()}
    if isinstance(value, list):
        return [thaw(item) for item in value]
    return value


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def check_name(value: object, *, field: str, limits: Limits) -> str:
    """Check a short identifying string (service, entity, type, status, ids).

    Raises:
        InvalidJobDataError: unless it is a non-empty string of at most
            ``limits.max_name_length`` characters with no control character
            (C0, DEL or C1) and no lone surrogate.
    """
    # The common case first: printable ASCII has no control character, NUL or
    # surrogate, so only its length is left to check.
    if (
        type(value) is str
        and value.isascii()
        and value.isprintable()
        and 0 < len(value) <= limits.max_name_length
    ):
        return value
    text = _check_string(value, field=field, max_length=limits.max_name_length)
    if not text:
        raise InvalidJobDataError(field, "", "must not be empty")
    if _CONTROL.search(text):
        raise InvalidJobDataError(field, "", "must not contain control characters")
    return text


def is_storable_key(value: object) -> bool:
    """Whether ``value`` could be a stored job id or request id.

    Every backend answers a look-up of any other value as "no such job" (or
    "no such request"): no stored key can equal it.
    """
    if not isinstance(value, str) or "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_text(value: object, *, field: str, limits: Limits) -> str:
    """Check free text (display name, description); it may be empty.

    Raises:
        InvalidJobDataError: unless it is a string of at most
            ``limits.max_text_length`` characters with no NUL and no lone surrogate.
    """
    if (
        type(value) is str
        and value.isascii()
        and "\x00" not in value
        and len(value) <= limits.max_text_length
    ):
        return value
    return _check_string(value, field=field, max_length=limits.max_text_length)


def _check_string(value: object, *, field: str, max_length: int) -> str:
    if not isinstance(value, str):
        raise InvalidJobDataError(field, "", f"must be a string, not {type(value).__name__}")
    if len(value) > max_length:
        raise InvalidJobDataError(field, "", f"is longer than {max_length} characters")
    if "\x00" in value:
        raise InvalidJobDataError(field, "", "contains a NUL character (U+0000)")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        raise InvalidJobDataError(
            field, "", f"has a lone surrogate at character {err.start}"
        ) from None
    return str.__str__(value) if type(value) is not str else value
