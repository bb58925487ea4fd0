"""Tiny valid JPEG and PNG frames, generated once per (picture, resolution) in pure Python.

The picture is a mosaic of flat 8x8 blocks (a coloured background with a lighter disc: an "avatar"), so a
baseline JPEG needs only DC coefficients: every block is its DC difference plus an end-of-block code.
"""

import struct
import zlib

# Standard Huffman tables (JPEG Annex K.3): counts per code length 1..16, then symbols.
DC_LUMA = ([0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0], list(range(12)))
DC_CHROMA = ([0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0], list(range(12)))
# Only the end-of-block symbol (0x00) is ever coded in the AC tables; one-symbol tables keep the files small.
AC_ONLY_EOB = ([1] + [0] * 15, [0x00])


def _codes(table):
    counts, symbols = table
    codes, code, index = {}, 0, 0
    for length, count in enumerate(counts, start=1):
        for _ in range(count):
            codes[symbols[index]] = (code, length)
            code += 1
            index += 1
        code <<= 1
    return codes


class _BitWriter:
    def __init__(self):
        self.out = bytearray()
        self.acc = 0
        self.bits = 0

    def write(self, value, length):
        self.acc = (self.acc << length) | (value & ((1 << length) - 1))
        self.bits += length
        while self.bits >= 8:
            self.bits -= 8
            byte = (self.acc >> self.bits) & 0xFF
            self.out.append(byte)
            if byte == 0xFF:
                self.out.append(0)  # byte stuffing
        self.acc &= (1 << self.bits) - 1

    def flush(self):
        if self.bits:
            self.write((1 << (8 - self.bits)) - 1, 8 - self.bits)
        return bytes(self.out)


def _segment(marker, payload):
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def _dht(table_class, table_id, table):
    counts, symbols = table
    return _segment(0xC4, bytes([table_class << 4 | table_id]) + bytes(counts) + bytes(symbols))


def _avatar_blocks(width, height, color):
    """Per 8x8 block RGB: background `color`, a lighter disc in the middle."""
    cols, rows = width // 8, height // 8
    light = tuple(min(255, c + 90) for c in color)
    cx, cy, radius = cols / 2, rows / 2, min(cols, rows) * 0.3
    blocks = []
    for row in range(rows):
        line = []
        for col in range(cols):
            inside = (col + 0.5 - cx) ** 2 + (row + 0.5 - cy) ** 2 <= radius * radius
            line.append(light if inside else color)
        blocks.append(line)
    return blocks


def _category(value):
    value = abs(value)
    size = 0
    while value:
        size += 1
        value >>= 1
    return size


def jpeg(width, height, color):
    """Baseline JPEG (YCbCr 4:4:4, quantisation 8) of the avatar mosaic."""
    width, height = width - width % 8, height - height % 8
    blocks = _avatar_blocks(width, height, color)
    quant = 8
    dc_codes = [_codes(DC_LUMA), _codes(DC_CHROMA), _codes(DC_CHROMA)]
    eob = [_codes(AC_ONLY_EOB)[0]] * 3
    writer = _BitWriter()
    previous = [0, 0, 0]
    cache = {}
    for line in blocks:
        for rgb in line:
            ycc = cache.get(rgb)
            if ycc is None:
                r, g, b = rgb
                y = 0.299 * r + 0.587 * g + 0.114 * b
                cb = 128 - 0.168736 * r - 0.331264 * g + 0.5 * b
                cr = 128 + 0.5 * r - 0.418688 * g - 0.081312 * b
                # DC of a flat block = 8 * (level - 128), then quantised.
                ycc = cache[rgb] = tuple(round(8 * (v - 128) / quant) for v in (y, cb, cr))
            for component in range(3):
                diff = ycc[component] - previous[component]
                previous[component] = ycc[component]
                size = _category(diff)
                code, length = dc_codes[component][size]
                writer.write(code, length)
                if size:
                    writer.write(diff if diff > 0 else diff + (1 << size) - 1, size)
                code, length = eob[component]
                writer.write(code, length)
    scan = writer.flush()
    header = b"\xff\xd8"
    header += _segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
    header += _segment(0xDB, bytes([0]) + bytes([quant] * 64))
    header += _segment(0xC0, struct.pack(">BHHB", 8, height, width, 3) + bytes([1, 0x11, 0, 2, 0x11, 0, 3, 0x11, 0]))
    header += _dht(0, 0, DC_LUMA) + _dht(1, 0, AC_ONLY_EOB) + _dht(0, 1, DC_CHROMA) + _dht(1, 1, AC_ONLY_EOB)
    header += _segment(0xDA, bytes([3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0]))
    return header + scan + b"\xff\xd9"


def png(width, height, color):
    blocks = _avatar_blocks(width - width % 8, height - height % 8, color)
    raw = bytearray()
    for line in blocks:
        row = b"\x00" + b"".join(bytes(rgb) * 8 for rgb in line)
        raw += row * 8
    width, height = len(blocks[0]) * 8, len(blocks) * 8

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(bytes(raw), 6)) + chunk(b"IEND", b""))
