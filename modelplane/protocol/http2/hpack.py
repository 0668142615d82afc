"""HPACK (RFC 7541): header blocks in and out of an HTTP/2 connection.

The decoder is complete: static and dynamic table, table size updates, integers and Huffman strings.
The encoder uses the static table but never adds to the dynamic one, and never uses Huffman coding,
which every decoder must accept: a server's answer headers are few and short, and most of them are
constant, so they are encoded once and reused.

Clients send the same headers on every call of a connection, and after the first call they arrive as a
block of table references only. Such a block changes no state, so its decoded form is kept and the same
bytes are not decoded again until the dynamic table changes.

A block of references is small and may decode to a very large list (a one-byte reference to a 4 KB
entry, repeated), so the decoder counts the list's size as it goes (RFC 7541 §4.1: name, value and 32
bytes per field) and stops as soon as it passes the limit it is given.
"""

from __future__ import annotations

from collections import deque

from hpack.huffman_table import decode_huffman

Headers = list[tuple[bytes, bytes]]


def find_header(headers: Headers, name: bytes) -> bytes | None:
    """The value of the first header of this (lowercase) name, or None."""
    for key, value in headers:
        if key == name:
            return value
    return None


STATIC_TABLE: tuple[tuple[bytes, bytes], ...] = tuple(
    (name.encode(), value.encode())
    for name, value in (
        (":authority", ""),
        (":method", "GET"),
        (":method", "POST"),
        (":path", "/"),
        (":path", "/index.html"),
        (":scheme", "http"),
        (":scheme", "https"),
        (":status", "200"),
        (":status", "204"),
        (":status", "206"),
        (":status", "304"),
        (":status", "400"),
        (":status", "404"),
        (":status", "500"),
        ("accept-charset", ""),
        ("accept-encoding", "gzip, deflate"),
        ("accept-language", ""),
        ("accept-ranges", ""),
        ("accept", ""),
        ("access-control-allow-origin", ""),
        ("age", ""),
        ("allow", ""),
        ("authorization", ""),
        ("cache-control", ""),
        ("content-disposition", ""),
        ("content-encoding", ""),
        ("content-language", ""),
        ("content-length", ""),
        ("content-location", ""),
        ("content-range", ""),
        ("content-type", ""),
        ("cookie", ""),
        ("date", ""),
        ("etag", ""),
        ("expect", ""),
        ("expires", ""),
        ("from", ""),
        ("host", ""),
        ("if-match", ""),
        ("if-modified-since", ""),
        ("if-none-match", ""),
        ("if-range", ""),
        ("if-unmodified-since", ""),
        ("last-modified", ""),
        ("link", ""),
        ("location", ""),
        ("max-forwards", ""),
        ("proxy-authenticate", ""),
        ("proxy-authorization", ""),
        ("range", ""),
        ("referer", ""),
        ("refresh", ""),
        ("retry-after", ""),
        ("server", ""),
        ("set-cookie", ""),
        ("strict-transport-security", ""),
        ("transfer-encoding", ""),
        ("user-agent", ""),
        ("vary", ""),
        ("via", ""),
        ("www-authenticate", ""),
    )
)
_STATIC_SIZE = len(STATIC_TABLE)
_ENTRY_OVERHEAD = 32  # RFC 7541 §4.1
_CACHE_LIMIT = 256
_CACHED_BLOCK_BYTES = 1024  # longer blocks are not worth keeping (and could fill memory)
_UNLIMITED = 2**63


class HpackError(Exception):
    """A header block that cannot be decoded: a connection error (COMPRESSION_ERROR)."""


class HeaderListTooLarge(Exception):
    """Decoding stopped: the header list grew past the limit (the table is no longer in step)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"a header list above {limit} bytes")
        self.limit = limit


class Decoder:
    def __init__(self, max_table_size: int = 4096) -> None:
        self._table: deque[tuple[bytes, bytes]] = deque()  # newest first
        self._table_bytes = 0
        self._max_table_bytes = max_table_size  # as last set by the peer's encoder
        self._allowed_table_bytes = max_table_size  # our SETTINGS_HEADER_TABLE_SIZE
        self._stateless_blocks: dict[bytes, tuple[Headers, int]] = {}

    def decode(self, block: bytes) -> Headers:
        return self.decode_sized(block, _UNLIMITED)[0]

    def decode_sized(self, block: bytes, limit: int) -> tuple[Headers, int]:
        """The fields of `block` and the size of their list; raises HeaderListTooLarge, having decoded
        no further, once that size passes `limit`."""
        cached = self._stateless_blocks.get(block)
        if cached is not None:
            headers, size = cached
            if size > limit:
                raise HeaderListTooLarge(limit)
            return list(headers), size
        try:
            headers, size, changed_state = self._decode(block, limit)
        except IndexError:
            raise HpackError("header block ends in the middle of a field") from None
        if not changed_state and len(block) <= _CACHED_BLOCK_BYTES:
            if len(self._stateless_blocks) >= _CACHE_LIMIT:
                self._stateless_blocks.clear()
            self._stateless_blocks[bytes(block)] = (list(headers), size)
        return headers, size

    def _decode(self, data: bytes, limit: int) -> tuple[Headers, int, bool]:
        headers: Headers = []
        size = 0
        changed_state = False
        table_size_updates = 0
        pos = 0
        end = len(data)
        while pos < end:
            byte = data[pos]
            if byte & 0x80:  # indexed field
                index, pos = _integer(data, pos, 7)
                name, value = field = self._entry(index)
                headers.append(field)
            else:
                if byte & 0x40:  # literal, added to the table
                    name, value, pos = self._literal(data, pos, 6)
                    self._add(name, value)
                    changed_state = True
                elif byte & 0x20:  # table size update
                    if headers:
                        raise HpackError("a table size update after the first field of a block")
                    table_size_updates += 1
                    if table_size_updates > 2:  # RFC 7541 §4.2: an encoder signals at most two
                        raise HpackError("more than two table size updates in one block")
                    new_size, pos = _integer(data, pos, 5)
                    if new_size > self._allowed_table_bytes:
                        raise HpackError(
                            f"table size {new_size} exceeds the {self._allowed_table_bytes} allowed"
                        )
                    self._max_table_bytes = new_size
                    self._evict(0)
                    changed_state = True
                    continue
                else:  # literal, not indexed or never indexed
                    name, value, pos = self._literal(data, pos, 4)
                headers.append((name, value))
            size += len(name) + len(value) + _ENTRY_OVERHEAD
            if size > limit:
                raise HeaderListTooLarge(limit)
        return headers, size, changed_state

    def _literal(self, data: bytes, pos: int, prefix_bits: int) -> tuple[bytes, bytes, int]:
        index, pos = _integer(data, pos, prefix_bits)
        if index:
            name = self._entry(index)[0]
        else:
            name, pos = _string(data, pos)
        value, pos = _string(data, pos)
        return name, value, pos

    def _entry(self, index: int) -> tuple[bytes, bytes]:
        if 0 < index <= _STATIC_SIZE:
            return STATIC_TABLE[index - 1]
        dynamic = index - _STATIC_SIZE - 1
        if 0 <= dynamic < len(self._table):
            return self._table[dynamic]
        raise HpackError(f"header table index {index} is out of range")

    def _add(self, name: bytes, value: bytes) -> None:
        size = len(name) + len(value) + _ENTRY_OVERHEAD
        self._stateless_blocks.clear()
        if size > self._max_table_bytes:
            self._table.clear()  # RFC 7541 §4.4: an entry larger than the table empties it
            self._table_bytes = 0
            return
        self._evict(size)
        self._table.appendleft((name, value))
        self._table_bytes += size

    def _evict(self, room: int) -> None:
        self._stateless_blocks.clear()
        while self._table and self._table_bytes + room > self._max_table_bytes:
            name, value = self._table.pop()
            self._table_bytes -= len(name) + len(value) + _ENTRY_OVERHEAD


def _integer(data: bytes, pos: int, prefix_bits: int) -> tuple[int, int]:
    mask = (1 << prefix_bits) - 1
    value = data[pos] & mask
    pos += 1
    if value < mask:
        return value, pos
    shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value += (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 28:
            raise HpackError("an integer longer than 4 bytes")


def header_list_size(headers: Headers) -> int:
    """The size of a header list as SETTINGS_MAX_HEADER_LIST_SIZE counts it."""
    return sum(len(name) + len(value) for name, value in headers) + _ENTRY_OVERHEAD * len(headers)


def _string(data: bytes, pos: int) -> tuple[bytes, int]:
    huffman = data[pos] & 0x80
    length, pos = _integer(data, pos, 7)
    end = pos + length
    if end > len(data):
        raise HpackError("a string runs past the end of the header block")
    raw = bytes(data[pos:end])
    if huffman:
        try:
            raw = decode_huffman(raw)
        except Exception as exc:  # the hpack package raises its own error type
            raise HpackError(f"bad Huffman code: {exc}") from None
    return raw, end


def encode_integer(value: int, prefix_bits: int, first_byte_flags: int = 0) -> bytes:
    mask = (1 << prefix_bits) - 1
    if value < mask:
        return bytes((first_byte_flags | value,))
    out = bytearray((first_byte_flags | mask,))
    value -= mask
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_STATIC_FIELDS = {field: index for index, field in enumerate(STATIC_TABLE, 1)}
# A name's first index (the table lists some names several times, with different values).
_STATIC_NAMES = {name: index for index, (name, _) in reversed(list(enumerate(STATIC_TABLE, 1)))}


def encode(headers: Headers) -> bytes:
    """A header block that changes no table: a field of the static table is its index (`:status: 200`
    is one byte), any other is a literal without indexing (its name by index when the static table has
    it), names and values as they are."""
    out = bytearray()
    for name, value in headers:
        index = _STATIC_FIELDS.get((name, value))
        if index is not None:
            out += encode_integer(index, 7, 0x80)
            continue
        name_index = _STATIC_NAMES.get(name)
        if name_index is None:
            out += b"\x00"
            out += encode_integer(len(name), 7)
            out += name
        else:
            out += encode_integer(name_index, 4)
        out += encode_integer(len(value), 7)
        out += value
    return bytes(out)
