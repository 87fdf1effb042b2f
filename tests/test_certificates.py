"""Certificates: the mirror accepts what is emitted and rejects every tampering."""

import json
import random
import re
import struct
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from hypothesis import given, strategies as st

from certify.lean import checker
from certify.lean.emit import CertificateError
from certify.lean.checker import Cert, Ops, check, get, get_by_shift, pack
from certify.lean.emit import (CertificateFile, check_certificate_text, emit, parse_certificate,
                          render_certificate)
from certify.modelio.model import Config
from certify.proofs.strategies import prove
from certify.modelio.weights import weights_sha256
from models import make_model

REPO = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).parent / "golden"
GOLDEN_CFG = Config(d_vocab=6, n_ctx=3, d_model=14, d_head=6)


def golden_weights() -> dict[str, torch.Tensor]:
    """A hand-built Max-of-3 model, perturbed by Python's own PRNG (no torch RNG, so the
    golden file is the same on every platform).

    Residual dims: 0-5 one-hot token, 6 token/5, 7 constant 1, 8-13 attention output.
    The query reads the constant, the key reads token/5 (attend to large tokens), the
    value copies the one-hot into dims 8-13, and W_U reads only those.
    """
    rng = random.Random(2024)
    d, dm, dh = 6, 14, 6
    def f32(x):
        return struct.unpack("f", struct.pack("f", x))[0]
    def mat(n, p, entries):
        return torch.tensor([[f32(entries.get((i, j), 0.0) + rng.gauss(0, 0.01)) for j in range(p)]
                             for i in range(n)], dtype=torch.float32)
    return {
        "W_E": mat(d, dm, {**{(t, t): 1.0 for t in range(d)}, **{(t, 6): t / 5 for t in range(d)},
                          **{(t, 7): 1.0 for t in range(d)}}),
        "W_pos": mat(3, dm, {}),
        "W_Q": mat(dm, dh, {(7, 0): 20.0}),
        "W_K": mat(dm, dh, {(6, 0): 1.0}),
        "W_V": mat(dm, dh, {(t, t): 1.0 for t in range(d)}),
        "W_O": mat(dh, dm, {(t, 8 + t): 1.0 for t in range(d)}),
        "W_U": mat(dm, d, {(8 + t, t): 4.0 for t in range(d)}),
    }


def certificate_for(cfg, w, seed=0) -> CertificateFile:
    r = prove(cfg, w, "subcubic")
    return CertificateFile(r.witness, r.count, seed, weights_sha256(w), "gap")


@pytest.fixture(scope="module")
def trained_cert():
    cfg = Config(8, 3, 16, 16)
    w = make_model(cfg, "trained", 0, 0, 0, 0.0)
    cf = certificate_for(cfg, w)
    assert cf.count > 0.3 * cf.total  # a real proof, so tampering has something to break
    return cfg, w, cf


def test_emitted_certificate_is_accepted(trained_cert, tmp_path):
    _, _, cf = trained_cert
    e = emit(cf, 0, lean_dir=tmp_path)
    rep = check_certificate_text(e.lean_path.read_text())
    assert rep.ok and rep.count == cf.count == rep.claimed
    assert (tmp_path / "MaxKCert.lean").read_text().count("import MaxKCert.Certs.") == 1
    assert "MaxKCert.Certs." + cf.module + ".cert" in (tmp_path / "MaxKCertAudit.lean").read_text()


def test_emit_is_byte_identical_on_rerun(trained_cert, tmp_path):
    _, _, cf = trained_cert
    e1 = emit(cf, 7, lean_dir=tmp_path)
    first = (e1.lean_path.read_bytes(), e1.summary_path.read_bytes())
    e2 = emit(cf, 7, lean_dir=tmp_path)
    assert (e2.lean_path.read_bytes(), e2.summary_path.read_bytes()) == first


def test_count_raised_by_one_is_rejected(trained_cert):
    _, _, cf = trained_cert
    text = render_certificate(replace(cf, count=cf.count + 1))
    rep = check_certificate_text(text)
    assert not rep.ok and "supports only" in rep.reason


def test_changed_weight_in_file_is_rejected(trained_cert):
    _, _, cf = trained_cert
    text = render_certificate(cf)
    line = re.search(r"^  wU := 0x([0-9a-f]+),$", text, re.MULTILINE)
    digits = line.group(1)
    k = len(digits) // 2  # a hex digit inside the number: one weight changes a little
    new = digits[:k] + ("1" if digits[k] != "1" else "2") + digits[k + 1:]
    tampered = text.replace(line.group(0), f"  wU := 0x{new},", 1)
    assert tampered != text
    rep = check_certificate_text(tampered)
    assert not rep.ok and ("weights_sha256" in rep.reason or "float32" in rep.reason)
    # a float32-preserving change (two weights swapped) is caught by the sha256
    c = cf.cert
    swapped = [row[:] for row in c.W_U]
    swapped[0][0], swapped[0][1] = swapped[0][1], swapped[0][0]
    if swapped != c.W_U:
        rep = check_certificate_text(render_certificate(replace(cf, cert=replace(c, W_U=swapped))))
        assert not rep.ok and "weights_sha256" in rep.reason


def test_changed_weight_that_breaks_the_proof_fails_the_checker(trained_cert):
    """Beyond the sha256: the checker itself rejects a proof that no longer holds."""
    _, _, cf = trained_cert
    c = cf.cert
    swapped = [row[:] for row in c.W_U]
    for row in swapped:  # swap the unembedding of the two largest tokens
        row[-1], row[-2] = row[-2], row[-1]
    v = check(replace(c, W_U=swapped), cf.count)
    assert not v.ok and "not proven correct" in v.reason


@pytest.mark.parametrize("mutate,message", [
    (lambda g: g[:-1], "gap table must be"),
    (lambda g: [r[:-1] for r in g], "gap table must be"),
    (lambda g: [[5] * len(r) for r in g], "outside"),
])
def test_malformed_witness_is_rejected(trained_cert, mutate, message):
    _, _, cf = trained_cert
    v = check(replace(cf.cert, gaps=mutate([r[:] for r in cf.cert.gaps])), 1)
    assert not v.ok and message in v.reason


def test_inflated_witness_is_rejected(trained_cert):
    """Raising one threshold past what the search found must break that family's check."""
    _, _, cf = trained_cert
    gaps = [r[:] for r in cf.cert.gaps]
    d = cf.cert.d_vocab
    q, m = next((q, m) for q in range(d) for m in range(q, d) if gaps[q][m] < m - 1)
    gaps[q][m] += 1
    v = check(replace(cf.cert, gaps=gaps), 0)
    assert not v.ok and f"(query {q}, max {m}" in v.reason


def test_hand_edited_file_is_rejected(trained_cert):
    _, _, cf = trained_cert
    text = render_certificate(cf).replace("theorem cert", "-- sneaky\ntheorem cert")
    rep = check_certificate_text(text)
    assert not rep.ok and "canonical" in rep.reason


def test_garbage_is_a_clear_rejection():
    rep = check_certificate_text("def data := 3\n")
    assert not rep.ok and "no field" in rep.reason


def test_mirror_count_never_exceeds_exhaustive():
    from certify.proofs.bruteforce import bruteforce
    from certify.proofs.exact import path_tables
    for kind in ("trained", "noisy", "swap_unembed", "loud_embedding"):
        for seed in range(4):
            cfg = Config(7, 3, 8, 8)
            w = make_model(cfg, kind, seed, 6, 5, 0.5)
            cf = certificate_for(cfg, w, seed)
            rep = check_certificate_text(render_certificate(cf))
            assert rep.ok and rep.count <= bruteforce(path_tables(w)).correct


def test_checker_path_tables_are_the_exact_tables(trained_cert):
    """The checker's packed, reassociated products (Eq (W_Q (W_K^T EP^T)), EP (W_V (W_O W_U)),
    Eq (W_U 2^(2 ws))) against `certify.proofs.exact`'s rationals, entry by entry."""
    from fractions import Fraction

    from certify.proofs.exact import path_tables
    cfg, w, cf = trained_cert
    for weights, cert in ((w, cf.cert), *((v, certificate_for(cfg, v).cert) for v in
                                          (make_model(cfg, "loud_embedding", 1, 6, 5, 0.5),))):
        got = checker.path_tables(cert, Ops())  # digits: entry + 2^(width - 1)
        want = path_tables(weights)
        scale = Fraction(1, 2 ** (4 * cert.weight_shift))
        half = 1 << (cert.width - 1)
        for name in ("EQKE", "EQKP", "EVOU", "PVOU", "EUPU"):
            table, exact = getattr(got, name), getattr(want, name)
            assert (len(table), len(table[0])) == exact.shape, name
            assert all((table[i][j] - half) * scale == exact.fraction(i, j)
                       for i in range(len(table)) for j in range(len(table[0]))), name


def test_packed_get_matches_the_kernel_shift_formula():
    xs = [0, 1, 5, 2 ** 20, 2 ** 24 - 1, 7]
    p = pack(xs, 24, Ops())
    assert [get_by_shift(p, i) for i in range(len(xs))] == [get(p, i, Ops()) for i in range(len(xs))] == xs
    p_odd = pack(xs, 25, Ops())  # Horner path (width not a multiple of 8)
    assert [get_by_shift(p_odd, i) for i in range(len(xs))] == xs
    # an entry of 2^width or more does not read back: why the checker packs only entries
    # below 2^width (digits, margins + base with width + 1 bits, exp entries <= 2^128)
    assert get_by_shift(pack([2 ** 24, 0], 24, Ops()), 0) != 2 ** 24


def _signed_packed(rows, width):
    """Signed rows as the checker packs them: offset digits and the pair (u, h repunit)."""
    h = 1 << max(abs(x) for r in rows for x in r).bit_length()
    base = 1 << width
    return checker.signed_rows([checker.pack_row([x + h for x in r], base, Ops()) for r in rows],
                               checker.pack_const(h, base, len(rows[0]), Ops()))


def _unpacked(zs, width, p):
    half = 1 << (width - 1)
    offset = checker.pack_const(half, 1 << width, p, Ops())
    return [[x - half for x in checker.unpack(z, offset, width, p, Ops())] for z in zs]


def test_packed_matrix_product_is_exact():
    rng = random.Random(1)
    a = [[rng.randint(-999, 999) for _ in range(5)] for _ in range(4)]
    b = [[rng.randint(-999, 999) for _ in range(3)] for _ in range(5)]
    want = [[sum(a[i][k] * b[k][j] for k in range(5)) for j in range(3)] for i in range(4)]
    assert checker.mat_prod(a, b, 32, Ops()) == want
    assert checker.mat_prod(a, b, 16, Ops()) != want  # why the width must be checked
    # cols_times is M^T @ B on packed rows, M given as offset digits
    h = 1 << 10
    got = _unpacked(checker.cols_times([[x + h for x in r] for r in a], h, _signed_packed(b[:4], 32), Ops()), 32, 3)
    assert got == [[sum(a[k][c] * b[k][j] for k in range(4)) for j in range(3)] for c in range(5)]


def test_chained_packed_products_need_only_the_final_digits_to_fit():
    """Packing is a ring identity: an intermediate product whose digits overflow the width
    still gives the exact final product, which is why `magnitudes_fit` bounds only the
    final tables."""
    width = 16
    b = [[1000, 0], [1000, 1]]
    c = [[30000, -30000], [5, 7]]  # B C has entries of 3e7 > 2^15, its two rows differ little
    a = [[1, -1], [-1, 1]]  # so A (B C) is small
    bc = [[sum(b[i][k] * c[k][j] for k in range(2)) for j in range(2)] for i in range(2)]
    want = [[sum(a[i][k] * bc[k][j] for k in range(2)) for j in range(2)] for i in range(2)]
    assert max(abs(x) for r in bc for x in r) >= 1 << (width - 1) > max(abs(x) for r in want for x in r)
    h = 1 << 11
    inner = checker.rows_times([[x + h for x in r] for r in b], h, _signed_packed(c, width), Ops())
    chained = checker.rows_times([[x + h for x in r] for r in a], h, inner, Ops())
    assert _unpacked(chained, width, 2) == want


def test_too_narrow_packing_is_rejected(trained_cert):
    _, _, cf = trained_cert
    v = check(replace(cf.cert, width=cf.cert.width // 2), 0)
    assert not v.ok and "packing width" in v.reason


def test_committed_certificates_match_their_summaries():
    """Each archived certificate re-checks, and its JSON summary (count, checker ops) is
    what the current checker says of the .lean file: no stale figure is archived."""
    import json
    certs = sorted((REPO / "lean" / "MaxKCert" / "Certs").glob("*.lean"))
    assert certs
    for path in certs:
        rep = check_certificate_text(path.read_text())
        summary = json.loads(path.with_suffix(".json").read_text())
        assert rep.ok, (path.name, rep.reason)
        assert (rep.claimed, rep.checker_ops, rep.total) == \
            (summary["count"], summary["checker_ops"], summary["total"]), path.name


def test_golden_certificate():
    w = golden_weights()
    cf = certificate_for(GOLDEN_CFG, w, seed=0)
    text = render_certificate(cf)
    path = GOLDEN / "V6K3M14H6Seed0.lean"
    if not path.exists():  # first run writes it; review and commit the file
        path.write_text(text)
    assert text == path.read_text(), "generated Lean changed: review the diff and update the golden file"
    assert parse_certificate(text) == cf
    assert check_certificate_text(text).ok and cf.count > 0
    assert "\nstrategy: gap\n" in text and "\nset_option maxHeartbeats 200000 in\n" in text


def test_archived_golden_certificate_still_renders_and_checks():
    """The format of the certificates committed before issue 18 (`strategy: subcubic`, the
    old heartbeat budget) is still accepted, byte for byte, and never written any more."""
    from certify.lean.emit import ARCHIVED_FORMAT
    cf = certificate_for(GOLDEN_CFG, golden_weights(), seed=0)
    archived = (GOLDEN / "V6K3M14H6Seed0.archived.lean").read_text()
    assert render_certificate(cf, fmt=ARCHIVED_FORMAT) == archived
    assert "\nstrategy: subcubic\n" in archived and "\nset_option maxHeartbeats 600000 in\n" in archived
    assert parse_certificate(archived) == cf and check_certificate_text(archived).ok
    assert render_certificate(cf) != archived
    # the two formats do not mix: the new name with the old budget (or the reverse) is refused
    for a, b in (("strategy: subcubic", "strategy: gap"), ("maxHeartbeats 600000", "maxHeartbeats 200000")):
        assert not check_certificate_text(archived.replace(a, b, 1)).ok


FORBIDDEN = re.compile(r"\bsorry\b|\badmit\b|native_decide|decide \+native|^\s*axiom\b|implemented_by"
                       r"|@\[extern|\bextern\b|skipKernelTC|\bunsafe\b|\bpartial\b", re.MULTILINE)


def test_no_forbidden_token_under_lean_or_templates():
    files = [p for d in ("lean", "templates") for p in (REPO / d).rglob("*")
             if p.is_file() and p.suffix in (".lean", ".j2") and ".lake" not in p.parts]
    assert files
    hits = []
    for p in files:
        for line in p.read_text().splitlines():
            code = line.split("--")[0]  # comments may name the banned tokens
            if FORBIDDEN.search(code):
                hits.append(f"{p}: {line.strip()}")
    assert not hits, hits


def test_every_packed_table_reads_the_same_by_shift(trained_cert):
    """The mirror reads packed tables through `entries`; Lean reads them by shift and mod.
    Pin that both agree on every table of a real certificate."""
    _, _, cf = trained_cert
    ops = Ops()
    ctx = checker.build_context(cf.cert, checker.path_tables(cf.cert, ops), ops)
    tables = [qi.pmax for qi in ctx.queries] + [mi.pm_dEV for mi in ctx.maxes]
    tables += [ctx.scoring.exp.fine_up, ctx.scoring.exp.fine_lo, ctx.scoring.exp.coarse_up,
               ctx.scoring.exp.coarse_lo]
    for t in tables:
        assert [get_by_shift(t, i) for i in range(len(t.entries))] == list(t.entries)


@given(st.integers(0, 10 ** 6), st.integers(0, 3))
def test_magnitude_bounds_cover_every_unpacked_entry(seed, shift):
    """`path_magnitudes` bounds EQKE and EQKP, EVOU and PVOU, and the rescaled EUPU: the
    soundness of `unpack` rests on it."""
    rng = random.Random(seed)
    d, K, dm, dh = rng.randint(2, 5), rng.randint(2, 4), rng.randint(1, 4), rng.randint(1, 4)
    shapes = {"W_E": (d, dm), "W_pos": (K, dm), "W_Q": (dm, dh), "W_K": (dm, dh), "W_V": (dm, dh),
              "W_O": (dh, dm), "W_U": (dm, d)}
    big = rng.choice([1, 7, 1000])
    w = {n: [[rng.randint(-big, big) for _ in range(p)] for _ in range(r)] for n, (r, p) in shapes.items()}
    c = Cert(d, K, dm, dh, shift, *(w[n] for n in shapes), width=256, isq_lo=0, isq_hi=0,
             gaps=[[-2] * d for _ in range(d)])
    tab = checker.path_tables(c, Ops())
    half = 1 << 255
    bounds = checker.path_magnitudes(checker.encode_cert(c), Ops())
    for bound, tables in zip(bounds, ((tab.EQKE, tab.EQKP), (tab.EVOU, tab.PVOU), (tab.EUPU,))):
        assert max(abs(x - half) for t in tables for r in t for x in r) <= bound


class _Sc:
    """The part of `Scoring` that worst_placement_ok reads."""
    def __init__(self, t, n):
        self.t_off, self.t_k, self.t_k1 = t, (n + 1) * t, (n + 2) * t


@given(st.lists(st.tuples(st.integers(-20, 20), st.integers(-20, 20)), min_size=1, max_size=5),
       st.integers(-30, 30), st.integers(0, 1))
def test_worst_placement_is_the_minimum_over_every_placement(ab, total, c_min):
    """The closed form of `worst_placement_ok` (on terms + T) against every choice of the
    positions that hold the max token (at least c_min of them): Q + sum over them of A +
    the rest of B."""
    A, B = [a for a, _ in ab], [b for _, b in ab]
    n = len(A)
    worst = min(total + sum(A[i] if mask >> i & 1 else B[i] for i in range(n))
                for mask in range(1 << n) if bin(mask).count("1") >= c_min)
    T = 1 << 10
    got = checker.worst_placement_ok(total + T, [a + T for a in A], [b + T for b in B], c_min, _Sc(T, n), Ops())
    assert got == (worst > 0)


@given(st.lists(st.integers(0, 15), min_size=2, max_size=12))
def test_margin_row_is_max_over_other_entries(row):
    """margin_row gives dX[m] + base, dX[m] = X[m] - max_{j != m} X[j] (the one-pass top-two
    is the checker's soundness)."""
    base = 16
    got = checker.margin_row(row, base, Ops())
    for m, x in enumerate(row):
        others = [y for j, y in enumerate(row) if j != m]
        assert got[m] - base == x - max(others) and 0 < got[m] < 2 * base


@given(st.lists(st.integers(-10**40, 10**40), min_size=1, max_size=20))
def test_unpack_inverts_packing_of_bounded_digits(xs):
    width = max(abs(x) for x in xs).bit_length() + 2
    assert _unpacked(_signed_packed([xs], width), width, len(xs)) == [xs]


@given(st.integers(0, 10 ** 6))
def test_encoding_round_trips(seed):
    """decode_cert(encode_cert(c)) == c: the file's naturals stand for exactly the weights."""
    rng = random.Random(seed)
    d, K, dm, dh = rng.randint(2, 5), rng.randint(2, 4), rng.randint(1, 4), rng.randint(1, 4)
    shapes = {"W_E": (d, dm), "W_pos": (K, dm), "W_Q": (dm, dh), "W_K": (dm, dh), "W_V": (dm, dh),
              "W_O": (dh, dm), "W_U": (dm, d)}
    big = rng.choice([1, 7, 2 ** 40])
    w = {n: [[rng.randint(-big, big) for _ in range(p)] for _ in range(r)] for n, (r, p) in shapes.items()}
    gaps = [[rng.randint(-2, max(-2, m - 1)) for m in range(d)] for _ in range(d)]
    c = Cert(d, K, dm, dh, 3, *(w[n] for n in shapes), width=64, isq_lo=1, isq_hi=2, gaps=gaps)
    assert checker.decode_cert(checker.encode_cert(c)) == c


def test_exp_neg_bounds_in_naturals_match_arith():
    """The checker's Nat transcription of exp_neg_bounds equals arith's on its two calls."""
    from certify.proofs.arith import exp_neg_bounds
    for a, b in ((1, checker.EXP_RES), (1, 0)):
        got = checker.exp_neg_bounds(a, b, checker.EXP_FRAC, checker.EXP_SQUARINGS, Ops())
        assert (got.lo, got.hi) == exp_neg_bounds(a, b, checker.EXP_FRAC)
    assert checker.exp_steps_ok(Ops())


def test_heartbeat_budget_covers_the_cost_model(trained_cert):
    """The dimension-only op bound behind `maxHeartbeats` is above the measured checker
    operations (small configuration and every committed certificate), and finite."""
    from certify.lean.kernel_cost import ops_bound
    certs = [trained_cert[2].cert] + [parse_certificate(p.read_text()).cert
                                      for p in (REPO / "lean" / "MaxKCert" / "Certs").glob("*.lean")]
    for c in certs:
        ops = Ops()
        checker.certified_count(c, ops)
        assert ops.int == 0  # the checker does no Int arithmetic
        assert ops.nat <= ops_bound(c.d_vocab, c.n_ctx, c.d_model, c.d_head)
    text = render_certificate(trained_cert[2])
    n = int(re.search(r"^set_option maxHeartbeats (\d+) in$", text, re.MULTILINE).group(1))
    assert n >= 200_000


def test_heartbeat_budget_is_sized_from_the_kernel_need():
    """maxHeartbeats * 1000 (Core.getMaxHeartbeats) covers SAFETY_FACTOR times the estimated
    kernel heartbeats, and is Lean's default wherever that suffices (seed 123: 200000, down
    from 16800000 before issue 18, about 30x the estimated need of 6.7e6 check_system calls)."""
    from certify.lean.emit import ARCHIVED_FORMAT, kernel_budget
    from certify.lean.kernel_cost import (NAT_STEPS, SAFETY_FACTOR, heartbeat_budget, kernel_heartbeats_needed,
                                          ops_bound)
    for dims in ((6, 3, 8, 8), (64, 4, 32, 32), (128, 10, 64, 32), (512, 20, 128, 32)):
        steps = NAT_STEPS * ops_bound(*dims)
        n = heartbeat_budget(steps)
        assert n * 1000 >= SAFETY_FACTOR * kernel_heartbeats_needed(steps)
        assert n == 200_000 or (n - 100_000) * 1000 < SAFETY_FACTOR * kernel_heartbeats_needed(steps)
    certs = {p.stem: parse_certificate(p.read_text()).cert for p in (REPO / "lean" / "MaxKCert" / "Certs").glob("*.lean")}
    seed123 = certs["V64K4M32H32Seed123_40c30c87"]
    assert kernel_budget(seed123) == 200_000 and kernel_budget(seed123, ARCHIVED_FORMAT) == 16_800_000
    for name, c in certs.items():
        text = (REPO / "lean" / "MaxKCert" / "Certs" / f"{name}.lean").read_text()
        budgets = {kernel_budget(c), kernel_budget(c, ARCHIVED_FORMAT)}
        assert int(re.search(r"^set_option maxHeartbeats (\d+) in$", text, re.MULTILINE).group(1)) in budgets


def test_lean_workflow_builds_replays_and_expects_rejections():
    """The Lean CI job is complete: it builds the certificates, replays them with
    leanchecker (which re-checks declarations added with `debug.skipKernelTC`), and
    requires both a tampered certificate and one that also skips the kernel to fail."""
    text = (REPO / ".github" / "workflows" / "lean.yml").read_text()
    steps = re.split(r"^      - ", text, flags=re.MULTILINE)[1:]
    names = [re.match(r"(?:name: )?(.*)", s).group(1) for s in steps]
    assert any(s.startswith("uses: actions/checkout") for s in steps)
    build = next(s for n, s in zip(names, steps) if n.startswith("lake build"))
    assert "rm -rf .lake" in build and re.search(r"^\s+lake build$", build, re.MULTILINE)
    replay = next(s for n, s in zip(names, steps) if n.startswith("leanchecker"))
    assert "lake env leanchecker --verbose MaxKCert" in replay
    tampered = next(s for n, s in zip(names, steps) if n == "A tampered certificate must be rejected")
    assert "if lake build > build.log 2>&1; then" in tampered and "exit 1" in tampered
    # a failure counts as the rejection only when the error is the tampered module's own
    assert 'grep -E "error" build.log | grep -q "$(basename "$cert" .lean)"' in tampered
    skipped = next(s for n, s in zip(names, steps) if "skips the kernel" in n)
    assert "debug.skipKernelTC true in" in skipped
    assert "if lake env leanchecker --verbose MaxKCert > check.log 2>&1; then" in skipped and "exit 1" in skipped
    assert 'grep -q "found a problem in $module" check.log' in skipped
    assert all("timeout-minutes:" in s for s in (tampered, skipped))  # a slow rejection fails the job
    # the step order: build, replay, then the two rejections
    assert names.index(next(n for n in names if n.startswith("lake build"))) < \
        names.index(next(n for n in names if n.startswith("leanchecker"))) < \
        names.index("A tampered certificate must be rejected")


def test_committed_certificates_formats():
    """The seed-123 certificate that `make certify SEED=123` regenerates is in today's format
    (`strategy: gap`); the archived Intel one stays in the format it was committed in."""
    from certify.lean.emit import ARCHIVED_FORMAT, CURRENT_FORMAT, _generator_version
    certs = REPO / "lean" / "MaxKCert" / "Certs"
    for stem, fmt in (("V64K4M32H32Seed123_40c30c87", CURRENT_FORMAT), ("V64K4M32H32Seed123_51c6508c", ARCHIVED_FORMAT)):
        text = (certs / f"{stem}.lean").read_text()
        assert render_certificate(parse_certificate(text), _generator_version(text), fmt) == text, stem
        assert json.loads((certs / f"{stem}.json").read_text())["strategy"] == fmt.strategy_label, stem
        assert check_certificate_text(text).format == fmt.name, stem


@pytest.mark.parametrize("field,value", [("model_name", "run/-v2"), ("source", "/data/run-/m.safetensors"),
                                         ("assumptions", ("plain architecture -/",)), ("source", "a\nb")])
def test_header_text_that_would_break_the_comment_is_refused(trained_cert, field, value):
    """Lean block comments nest: '/-' in a header line would swallow the rest of the file
    and '-/' would end the header early, so `certify check` would pass a file Lean cannot
    build. Such text is refused when rendering, and so in any re-rendered (checked) file."""
    _, _, cf = trained_cert
    with pytest.raises(CertificateError, match="cannot go in a certificate header"):
        render_certificate(replace(cf, **{field: value}))
