r"""Which devices a spot check reads: a pure function of the auditor's seed and the candidates.

The algorithm (ALGORITHM), so anyone can recompute the choice from the seed and the list:

1. The candidates are the keys of the devices counted as connected in the window, sorted
   by their UTF-8 bytes and without duplicates.
2. Each key is ranked by SHA-256 over the UTF-8 bytes of ``seed + "\n" + key``, as
   lower-case hex.
3. The ``sample_size`` keys with the smallest ranks are picked (ties, which SHA-256 does not
   produce in practice, fall back to the key); fewer candidates than that: all of them.

The candidate list's digest is SHA-256 over the sorted keys, each followed by ``"\n"``,
all UTF-8: with it an auditor can confirm which list the choice was drawn from.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

ALGORITHM = "sha256-rank-v1"
"""Name of the selection algorithm stored with every spot check."""

RULE = (
    "Candidates: the keys of the devices counted as connected in the window, sorted by their "
    "UTF-8 bytes. Each key's rank is the lower-case hex SHA-256 of the UTF-8 bytes of "
    'seed + "\\n" + key; the sample_size keys with the smallest ranks are picked (all of them '
    "when there are fewer). candidates_digest is the hex SHA-256 of the sorted keys, each "
    'followed by "\\n".'
)
"""The algorithm in words, stated in every spot check so that anyone can recompute it."""


@dataclass(frozen=True, slots=True)
class Pick:
    """One picked device: its key and its rank digest (hex)."""

    key: str
    rank: str


@dataclass(frozen=True, slots=True)
class Selection:
    """The outcome of a selection: the picks, smallest rank first, and the candidate list."""

    picks: tuple[Pick, ...]
    candidates: int
    candidates_digest: str
    algorithm: str = ALGORITHM


def candidate_list(keys: Iterable[str]) -> list[str]:
    """Return the candidate keys as the algorithm orders them: sorted UTF-8, no duplicates."""
    return sorted(set(keys), key=lambda k: k.encode("utf-8"))


def candidates_digest(keys: Iterable[str]) -> str:
    """Return SHA-256 (hex) of the sorted candidate keys, each followed by a newline."""
    digest = hashlib.sha256()
    for key in candidate_list(keys):
        digest.update(key.encode("utf-8") + b"\n")
    return digest.hexdigest()


def rank(seed: str, key: str) -> str:
    """Return the rank of a key under a seed: SHA-256 (hex) of seed, a newline and the key."""
    return hashlib.sha256(f"{seed}\n{key}".encode()).hexdigest()


def select(seed: str, keys: Iterable[str], sample_size: int) -> Selection:
    """Pick `sample_size` keys (all, when there are fewer) by smallest rank under `seed`."""
    if sample_size < 1:
        raise ValueError(f"sample_size must be at least 1, got {sample_size}")
    listed = candidate_list(keys)
    ranked = sorted((rank(seed, key), key.encode("utf-8"), key) for key in listed)
    picks = tuple(Pick(key, digest) for digest, _, key in ranked[:sample_size])
    return Selection(picks, len(listed), candidates_digest(listed))
