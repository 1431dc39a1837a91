"""Seeded randomness keyed by what happens, not by when.

Every random decision (does page P's n-th read flip a bit? where does the
torn write of op N stop?) is a pure function of (seed, key...). Decisions then
repeat exactly for the same seed even if unrelated requests interleave
differently, and a replay can recompute a live run's choices without having
shared its RNG state.
"""

from __future__ import annotations

import hashlib
import random
import struct

_SCALE = 1.0 / (1 << 64)


def _digest(seed: int, tag: str, keys: tuple[int, ...]) -> bytes:
    packed = struct.pack(f"<q{len(keys)}q", seed, *keys)
    return hashlib.blake2b(tag.encode() + b"\0" + packed, digest_size=16).digest()


def draw(seed: int, tag: str, *keys: int) -> float:
    """A uniform float in [0, 1) for this (seed, tag, keys)."""
    return int.from_bytes(_digest(seed, tag, keys)[:8], "little") * _SCALE


def rng(seed: int, tag: str, *keys: int) -> random.Random:
    """A generator of its own for this (seed, tag, keys), for several draws."""
    return random.Random(int.from_bytes(_digest(seed, tag, keys), "little"))
