"""The selection of a spot check: reproducible from seed and candidates, by the stated rule."""

from __future__ import annotations

import hashlib

import pytest

from collector.spotcheck.selection import ALGORITHM, candidates_digest, rank, select

KEYS = [f"dev-{i:03d}" for i in range(40)]


def test_the_same_seed_picks_the_same_devices_whatever_the_order_of_the_list() -> None:
    first = select("audit-2026-12", KEYS, 5)
    again = select("audit-2026-12", list(reversed(KEYS)) + KEYS[:3], 5)  # shuffled, duplicated
    assert first == again
    assert len(first.picks) == 5 and len({p.key for p in first.picks}) == 5
    assert first.candidates == 40 and first.algorithm == ALGORITHM


def test_different_seeds_pick_different_devices() -> None:
    picks = {tuple(p.key for p in select(f"seed-{n}", KEYS, 5).picks) for n in range(20)}
    assert len(picks) == 20  # 20 seeds, 20 different samples of 5 out of 40


def test_the_pick_is_the_documented_rule_recomputed_by_hand() -> None:
    seed = "石化 audit\tQ4"  # any string: non-ASCII and whitespace included
    expected_ranks = {
        k: hashlib.sha256(seed.encode() + b"\n" + k.encode()).hexdigest() for k in KEYS
    }
    expected = sorted(KEYS, key=lambda k: expected_ranks[k])[:7]
    got = select(seed, KEYS, 7)
    assert [p.key for p in got.picks] == expected
    assert [p.rank for p in got.picks] == [expected_ranks[k] for k in expected]
    assert rank(seed, KEYS[0]) == expected_ranks[KEYS[0]]
    listing = "".join(f"{k}\n" for k in sorted(KEYS)).encode()
    assert got.candidates_digest == hashlib.sha256(listing).hexdigest()


def test_a_larger_sample_than_the_candidates_takes_them_all() -> None:
    got = select("s", KEYS[:3], 10)
    assert sorted(p.key for p in got.picks) == KEYS[:3]
    assert [p.rank for p in got.picks] == sorted(p.rank for p in got.picks)
    assert select("s", [], 1).picks == ()


def test_the_candidate_digest_depends_on_the_list_only() -> None:
    assert candidates_digest(KEYS) == candidates_digest(reversed(KEYS))
    assert candidates_digest(KEYS) != candidates_digest(KEYS[1:])
    assert candidates_digest([]) == hashlib.sha256(b"").hexdigest()


def test_keys_sort_by_their_utf8_bytes() -> None:
    # Python orders str by code point, which for these agrees with UTF-8 byte order; the
    # digest must follow the documented byte order either way.
    keys = ["b", "a", "é", "Z", "ß"]
    listing = b"".join(k.encode() + b"\n" for k in sorted(keys, key=str.encode))
    assert candidates_digest(keys) == hashlib.sha256(listing).hexdigest()


@pytest.mark.parametrize("size", [0, -1])
def test_a_sample_size_below_one_is_refused(size: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        select("s", KEYS, size)
