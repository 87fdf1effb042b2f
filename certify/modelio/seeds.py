"""Named seed sets. `paper151` is the 151 seeds of the Max-of-4 paper (seed 123 selected)."""

from __future__ import annotations

PAPER151: tuple[int, ...] = (
    50, 104, 123, 519, 742, 913, 1185, 1283, 1412, 1490,
    1681, 1696, 1895, 1951, 2236, 2306, 2345, 2549, 2743, 2773,
    3175, 3254, 3284, 4157, 4305, 4430, 4647, 4729, 4800, 4810,
    5358, 5615, 5781, 5928, 6082, 6155, 6159, 6204, 6532, 6549,
    6589, 6910, 7098, 7238, 7310, 7467, 7790, 7884, 8048, 8299,
    8721, 8745, 8840, 8893, 9132, 9134, 9504, 9816, 10248, 11124,
    11130, 11498, 11598, 11611, 12141, 12287, 12457, 12493, 12552, 12561,
    13036, 13293, 13468, 13654, 13716, 14095, 14929, 15043, 15399, 15622,
    15662, 16069, 16149, 16197, 16284, 17080, 17096, 17194, 17197, 18146,
    18289, 18668, 19004, 19093, 19451, 19488, 19538, 19917, 20013, 20294,
    20338, 20415, 20539, 20751, 20754, 20976, 21317, 21598, 22261, 22286,
    22401, 22545, 23241, 23367, 23447, 23633, 23696, 24144, 24173, 24202,
    24262, 24438, 24566, 25516, 26278, 26374, 26829, 26932, 27300, 27484,
    27584, 27671, 27714, 28090, 28716, 28778, 29022, 29052, 29110, 29195,
    29565, 29725, 29726, 30371, 30463, 30684, 30899, 31308, 32103, 32374,
    32382,
)

MAX_SEED = 2**64 - 1  # torch.Generator.manual_seed takes 0 .. 2^64 - 1

SEED_SETS: dict[str, tuple[int, ...]] = {"paper151": PAPER151}


def parse_seeds(spec: str) -> list[int]:
    """A named set (`paper151`) or a comma list of non-negative integers."""
    if spec in SEED_SETS:
        return list(SEED_SETS[spec])
    try:
        seeds = [int(s) for s in spec.split(",") if s.strip()]
    except ValueError:
        raise ValueError(f"unknown seed set {spec!r}: use one of {sorted(SEED_SETS)} or a comma list of integers") from None
    if not seeds or any(s < 0 for s in seeds):
        raise ValueError(f"bad seed list {spec!r}: seeds are non-negative integers")
    too_big = [s for s in seeds if s > MAX_SEED]
    if too_big:
        raise ValueError(f"seed {too_big[0]} is out of range: seeds go from 0 to 2^64 - 1 (torch's seed range)")
    return seeds
