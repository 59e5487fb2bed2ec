"""Byte-level corruptions of a data file that both fuzz tests apply (tests/run/test_inputs_fuzz.py
at loading, tests/test_train_fuzz.py through training): each takes the file's bytes and a seeded
numpy Generator and returns the damaged bytes."""

from __future__ import annotations


def truncate(data: bytes, rng) -> bytes:
    return data[: int(rng.integers(0, len(data)))]


def empty(data: bytes, rng) -> bytes:
    return b"" if rng.random() < 0.5 else data.split(b"\n", 1)[0] + b"\n"  # or the header only


def encoding(data: bytes, rng) -> bytes:
    kind = rng.choice(["utf-16", "latin-1", "bom", "crlf"])
    if kind == "utf-16":
        return data.decode().encode("utf-16")
    if kind == "bom":
        return b"\xef\xbb\xbf" + data
    if kind == "crlf":
        return data.replace(b"\n", b"\r\n")
    at = int(rng.integers(0, len(data)))
    return data[:at] + "caf\xe9".encode("latin-1") + data[at:]
