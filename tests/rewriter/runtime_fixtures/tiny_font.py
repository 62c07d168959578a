"""The smallest TrueType font Chromium's font sanitiser (OTS) loads: one empty glyph, no names.

A font made here rather than read from the system: the tests must not depend on a font package.
"""

from __future__ import annotations

import struct


def tiny_ttf() -> bytes:
    """A TrueType font (``font/ttf``) with the tables OTS requires, each checksummed."""
    tables = {
        b"OS/2": struct.pack(">HhHHH10hh10s4I4sHHHhhhHH", 0, 500, 400, 5, 0, *([0] * 10), 0,
                             bytes(10), 0, 0, 0, 0, b"NONE", 0x40, 0x20, 0x20, 800, -200, 0, 800, 200),
        b"cmap": struct.pack(">HHHHI", 0, 1, 3, 1, 12)
        + struct.pack(">10HhH", 4, 24, 0, 2, 2, 0, 0, 0xFFFF, 0, 0xFFFF, 1, 0),
        b"glyf": bytes(4),
        b"head": struct.pack(">IIIIHHqqhhhhHHhhh", 0x10000, 0x10000, 0, 0x5F0F3CF5, 0, 1000, 0, 0,
                             0, 0, 0, 0, 0, 8, 2, 0, 0),
        b"hhea": struct.pack(">I3hH11hH", 0x10000, 800, -200, 0, 500,
                             0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1),
        b"hmtx": struct.pack(">Hh", 500, 0),
        b"loca": struct.pack(">HH", 0, 0),
        b"maxp": struct.pack(">IH13H", 0x10000, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0),
        b"name": struct.pack(">HHH", 0, 0, 6),
        b"post": struct.pack(">IIhhIIIII", 0x30000, 0, 0, 0, 0, 0, 0, 0, 0),
    }
    count = len(tables)
    directory = struct.pack(">IHHHH", 0x10000, count, 128, 3, count * 16 - 128)
    offset = 12 + 16 * count
    records, data = b"", b""
    for tag in sorted(tables):
        body = tables[tag]
        padded = body + bytes(-len(body) % 4)
        checksum = sum(struct.unpack(f">{len(padded) // 4}I", padded)) & 0xFFFFFFFF
        records += struct.pack(">4sIII", tag, checksum, offset + len(data), len(body))
        data += padded
    return directory + records + data
