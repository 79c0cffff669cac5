"""A compact, immutable sequence of room users: ~30 bytes a user instead of ~200 for tuples of strings.

A 100,000-user snapshot kept as RoomUser tuples costs about 20 MB (two str objects and a tuple per user);
packed into two UTF-8 blobs with end offsets it is about 3 MB. Users are decoded on access, which is cheap
for what the app does with them (a page of 20, a filter pass, a CSV export).
"""

from __future__ import annotations

import itertools
import struct
import sys
from array import array
from collections.abc import Iterable, Iterator, Sequence
from typing import overload

from bot.roster.user import RoomUser

# JSON from ZIM may carry lone surrogates ("\ud800"); they must survive the round trip, not crash it.
_ERRORS = "surrogatepass"
# Binary form: user count, ID blob length, name blob length; then the blobs and both offset arrays
# (little-endian uint32).
_HEADER = struct.Struct("<III")


class _Blobs(Sequence[RoomUser]):
    """Users kept as two UTF-8 blobs with end offsets, decoded on access: the reading side PackedUsers and
    GrowingUsers share."""

    __slots__ = ("_id_ends", "_ids", "_name_ends", "_names")
    _ids: bytes | bytearray
    _names: bytes | bytearray
    _id_ends: array[int]
    _name_ends: array[int]

    def __len__(self) -> int:
        return len(self._id_ends)

    def _user(self, index: int) -> RoomUser:
        id_start = self._id_ends[index - 1] if index else 0
        name_start = self._name_ends[index - 1] if index else 0
        return RoomUser(
            self._ids[id_start : self._id_ends[index]].decode("utf-8", _ERRORS),
            self._names[name_start : self._name_ends[index]].decode("utf-8", _ERRORS),
        )

    @overload
    def __getitem__(self, index: int) -> RoomUser: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[RoomUser]: ...

    def __getitem__(self, index: int | slice) -> RoomUser | Sequence[RoomUser]:
        if isinstance(index, slice):
            return [self._user(i) for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("user index out of range")
        return self._user(index)

    def __iter__(self) -> Iterator[RoomUser]:
        for index in range(len(self)):
            yield self._user(index)

    def __reversed__(self) -> Iterator[RoomUser]:
        for index in range(len(self) - 1, -1, -1):
            yield self._user(index)


class PackedUsers(_Blobs):
    __slots__ = ()

    def __init__(self, users: Iterable[RoomUser | tuple[str, str]] = ()) -> None:
        ids, names = bytearray(), bytearray()
        id_ends, name_ends = array("I"), array("I")
        for user_id, user_name in users:
            ids += user_id.encode("utf-8", _ERRORS)
            names += user_name.encode("utf-8", _ERRORS)
            id_ends.append(len(ids))
            name_ends.append(len(names))
        self._ids, self._names = bytes(ids), bytes(names)
        self._id_ends, self._name_ends = id_ends, name_ends

    def to_bytes(self) -> bytes:
        """A compact binary form (for a shared store); `from_bytes` reverses it without decoding any user."""
        ends = [array("I", self._id_ends), array("I", self._name_ends)]
        if sys.byteorder == "big":
            for offsets in ends:
                offsets.byteswap()
        header = _HEADER.pack(len(self), len(self._ids), len(self._names))
        return b"".join([header, self._ids, self._names, ends[0].tobytes(), ends[1].tobytes()])

    @classmethod
    def from_bytes(cls, data: bytes) -> PackedUsers:
        """Raises ValueError for data `to_bytes` did not write (wrong lengths or offsets)."""
        count, ids_size, names_size = _HEADER.unpack_from(data)
        start = _HEADER.size
        if len(data) != start + ids_size + names_size + 8 * count:
            raise ValueError("packed users: wrong length")
        packed = cls()
        packed._ids = data[start : start + ids_size]
        packed._names = data[start + ids_size : start + ids_size + names_size]
        offsets = start + ids_size + names_size
        packed._id_ends = array("I", data[offsets : offsets + 4 * count])
        packed._name_ends = array("I", data[offsets + 4 * count :])
        if sys.byteorder == "big":
            packed._id_ends.byteswap()
            packed._name_ends.byteswap()
        for ends, size in ((packed._id_ends, ids_size), (packed._name_ends, names_size)):
            if count and (ends[-1] != size or any(a > b for a, b in itertools.pairwise(ends))):
                raise ValueError("packed users: offsets out of order")
        return packed

    @classmethod
    def _from_parts(cls, ids: bytes, names: bytes, id_ends: array[int], name_ends: array[int]) -> PackedUsers:
        """Wrap blobs and offsets built elsewhere in this module (GrowingUsers, joined) without re-encoding."""
        packed = cls()
        packed._ids, packed._names, packed._id_ends, packed._name_ends = ids, names, id_ends, name_ends
        return packed

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PackedUsers):
            return (self._ids, self._names, self._id_ends, self._name_ends) == (
                other._ids,
                other._names,
                other._id_ends,
                other._name_ends,
            )
        if isinstance(other, Sequence) and not isinstance(other, str):
            return len(self) == len(other) and all(a == tuple(b) for a, b in zip(self, other, strict=True))
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self._ids, self._names))

    def __repr__(self) -> str:
        return f"PackedUsers({len(self)} users)"


class ReversedUsers(Sequence[RoomUser]):
    """A newest-first view of a user sequence, without copying it."""

    __slots__ = ("_users",)

    def __init__(self, users: Sequence[RoomUser]) -> None:
        self._users = users

    def __len__(self) -> int:
        return len(self._users)

    @overload
    def __getitem__(self, index: int) -> RoomUser: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[RoomUser]: ...

    def __getitem__(self, index: int | slice) -> RoomUser | Sequence[RoomUser]:
        size = len(self._users)
        if isinstance(index, slice):
            return [self._users[size - 1 - i] for i in range(*index.indices(size))]
        if index < 0:
            index += size
        if not 0 <= index < size:
            raise IndexError("user index out of range")
        return self._users[size - 1 - index]

    def __iter__(self) -> Iterator[RoomUser]:
        return reversed(self._users)


class GrowingUsers(_Blobs):
    """The append-only twin of PackedUsers: a read packs users as its pages arrive (~30 bytes a user).

    It is a Sequence while it grows, so answers can serve pages of a read still under way from it.
    """

    __slots__ = ()

    def __init__(self) -> None:
        self._ids, self._names = bytearray(), bytearray()
        self._id_ends, self._name_ends = array("I"), array("I")

    def append(self, user: RoomUser) -> None:
        self._ids += user.user_id.encode("utf-8", _ERRORS)
        self._names += user.user_name.encode("utf-8", _ERRORS)
        self._id_ends.append(len(self._ids))
        self._name_ends.append(len(self._names))

    def extend(self, users: Iterable[RoomUser]) -> None:
        for user in users:
            self.append(user)

    def freeze(self) -> PackedUsers:
        """An immutable PackedUsers of the users so far (copies the blobs once; this builder stays usable)."""
        return PackedUsers._from_parts(
            bytes(self._ids), bytes(self._names), array("I", self._id_ends), array("I", self._name_ends)
        )

    def clear(self) -> None:
        """Free the blobs (after freeze(), once nothing reads the partial list any more)."""
        self._ids, self._names = bytearray(), bytearray()
        self._id_ends, self._name_ends = array("I"), array("I")


def _reversed_blob(blob: bytearray, ends: array[int]) -> tuple[bytearray, list[int]]:
    """The items of `blob` (delimited by `ends`) in reverse order, and their lengths in that order."""
    out = bytearray()
    lengths = []
    for index in range(len(ends) - 1, -1, -1):
        start = ends[index - 1] if index else 0
        out += blob[start : ends[index]]
        lengths.append(ends[index] - start)
    return out, lengths


def joined(oldest_first: GrowingUsers, newest_first: GrowingUsers, *, release: bool = False) -> PackedUsers:
    """`oldest_first` then `newest_first` reversed, as one PackedUsers, without decoding a user.

    Used by the paging core to assemble the roster in join order from the two chains' packed users. With
    `release`, each input blob is freed as soon as it is copied (IDs first, then names), so the peak stays
    close to the result's size rather than three times it; the inputs are then empty.
    """
    parts: list[bytes] = []
    ends_out: list[array[int]] = []
    for attribute, ends_attribute in (("_ids", "_id_ends"), ("_names", "_name_ends")):
        front: bytearray = getattr(oldest_first, attribute)
        back_blob, lengths = _reversed_blob(getattr(newest_first, attribute), getattr(newest_first, ends_attribute))
        if release:
            setattr(newest_first, attribute, bytearray())
        ends = array("I", getattr(oldest_first, ends_attribute))
        total = len(front)
        for length in lengths:
            total += length
            ends.append(total)
        parts.append(b"".join((front, back_blob)))
        del back_blob, front
        if release:
            setattr(oldest_first, attribute, bytearray())
        ends_out.append(ends)
    if release:
        oldest_first.clear()
        newest_first.clear()
    return PackedUsers._from_parts(parts[0], parts[1], ends_out[0], ends_out[1])
