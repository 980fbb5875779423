#!/usr/bin/env python3
"""Writes the .npy seeds of the npy fuzz target into corpus/npy/: files as numpy writes them (every
dtype family, both byte orders, Fortran order, format versions 1.0 to 3.0, 0-d and empty arrays)
and a few near misses. Only the standard library is needed, so the bytes are assembled here."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus", "npy")


def shape_repr(shape):
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def npy(descr, shape, data, fortran=False, version=1, header=None):
    """A .npy file: preamble, header padded to 64 bytes with a final newline, data."""
    if header is None:
        header = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (
            descr, "True" if fortran else "False", shape_repr(shape))
    length_size = 2 if version == 1 else 4
    preamble = 6 + 2 + length_size
    padding = -(preamble + len(header) + 1) % 64
    text = (header + " " * padding + "\n").encode("latin-1" if version < 3 else "utf-8")
    length = struct.pack("<H" if version == 1 else "<I", len(text))
    return b"\x93NUMPY" + bytes([version, 0]) + length + text + data


def values(fmt, items):
    return struct.pack(fmt[0] + fmt[1:] * len(items), *items)


SEEDS = {
    # What convgen itself reads and writes: float32, little-endian, C order.
    "f4_2x3": npy("<f4", (2, 3), values("<f", [0, 1, -2, 3.5, 1e-3, -7])),
    "f4_nhwc_1x2x2x3": npy("<f4", (1, 2, 2, 3), values("<f", [i / 4 for i in range(12)])),
    "f4_big_endian_4": npy(">f4", (4,), values(">f", [1, -1, 0.5, 2**100])),
    "f4_fortran_2x3x2": npy("<f4", (2, 3, 2), values("<f", list(range(12))), fortran=True),
    "f4_0d": npy("<f4", (), values("<f", [42])),
    "f4_empty_0x3": npy("<f4", (0, 3), b""),
    "f4_version2": npy("<f4", (3,), values("<f", [1, 2, 3]), version=2),
    "f4_version3": npy("<f4", (2,), values("<f", [1, 2]), version=3),
    # Conversions: half, double, integers of every width and both byte orders.
    "f2_3": npy("<f2", (3,), values("<e", [1, -0.5, 65504])),
    "f8_big_endian_2x2": npy(">f8", (2, 2), values(">d", [1e300, -1e-300, 3.25, 0])),
    "i1_4": npy("|i1", (4,), values("<b", [-128, -1, 0, 127])),
    "u1_fortran_2x2": npy("|u1", (2, 2), bytes([0, 1, 254, 255]), fortran=True),
    "i2_big_endian_3": npy(">i2", (3,), values(">h", [-32768, 0, 32767])),
    "u2_2": npy("<u2", (2,), values("<H", [0, 65535])),
    "i4_2": npy("<i4", (2,), values("<i", [-2**31, 2**31 - 1])),
    "u4_big_endian_2": npy(">u4", (2,), values(">I", [0, 2**32 - 1])),
    "i8_2": npy("<i8", (2,), values("<q", [-2**63, 2**63 - 1])),
    "u8_2": npy("<u8", (2,), values("<Q", [0, 2**64 - 1])),
    # Spellings older numpy versions and hand-written files use.
    "f4_python2_long_shape": npy("<f4", None, values("<f", [1, 2]),
                                 header="{'descr': '<f4', 'fortran_order': False, 'shape': (2L,)}"),
    "f4_double_quotes_key_order": npy(
        "<f4", None, values("<f", [1, 2]),
        header='{"shape": (2,), "fortran_order": False, "descr": "<f4"}'),
    # Near misses: refused with an error.
    "bad_truncated_data": npy("<f4", (2, 3), values("<f", [1, 2, 3])),
    "bad_complex_dtype": npy("<c8", (1,), values("<f", [1, 0])),
    "bad_structured_dtype": npy(None, None, b"\0" * 4,
                                header="{'descr': [('a', '<f4')], 'fortran_order': False, "
                                       "'shape': (1,), }"),
    "bad_negative_shape": npy("<f4", (-1, 2), b""),
    "bad_version_4": npy("<f4", (1,), values("<f", [1]), version=4),
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(OUT, name + ".npy"), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
