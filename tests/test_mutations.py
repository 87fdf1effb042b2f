"""Mutated certificates: the mirror accepts the honest one and never accepts a false claim.

Emulator-free: the ground truth is the exhaustive count of the (mutated) model, so every
mutation that the checker accepts must claim no more than that count. Each mutation
class also has to produce rejections, so the test can fail.
"""

import random
import re
from dataclasses import replace

import pytest
import torch

from certify.lean import checker
from certify.proofs.bruteforce import bruteforce
from certify.lean.checker import Cert, CertData, check, encode_cert
from certify.lean.emit import check_certificate_text, render_certificate
from certify.proofs.exact import path_tables
from certify.modelio.model import Config
from test_certificates import certificate_for
from models import make_model

CFG = Config(7, 3, 8, 8)


@pytest.fixture(scope="module")
def honest():
    w = make_model(CFG, "trained", 1, 0, 0, 0.0)
    cf = certificate_for(CFG, w)
    assert cf.count > 0.3 * cf.total
    return cf


def truth(c: Cert) -> int:
    """Exhaustive count of the model the certificate's integers stand for."""
    scale = 2.0 ** -c.weight_shift
    weights = {}
    for name in checker.WEIGHT_FIELDS:
        t = torch.tensor([[x * scale for x in r] for r in getattr(c, name)], dtype=torch.float64)
        assert torch.equal(t.to(torch.float32).to(torch.float64), t), "mutation left float32"
        weights[name] = t.to(torch.float32)
    return bruteforce(path_tables(weights)).correct


def mutate_weights(c: Cert, rng: random.Random) -> Cert:
    """Float32-preserving edits: negate, double, halve, zero or swap entries."""
    mats = {n: [r[:] for r in getattr(c, n)] for n in checker.WEIGHT_FIELDS}
    for _ in range(rng.randint(1, 4)):
        name = rng.choice(checker.WEIGHT_FIELDS)
        m = mats[name]
        i, j = rng.randrange(len(m)), rng.randrange(len(m[0]))
        op = rng.choice(("neg", "double", "half", "zero", "swap"))
        if op == "neg":
            m[i][j] = -m[i][j]
        elif op == "double":
            m[i][j] *= 2
        elif op == "half" and m[i][j] % 2 == 0:
            m[i][j] //= 2
        elif op == "zero":
            m[i][j] = 0
        elif op == "swap":
            k = rng.randrange(len(m[0]))
            m[i][j], m[i][k] = m[i][k], m[i][j]
    c = replace(c, **mats)
    from certify.proofs.certificate import needed_width
    return replace(c, width=max(c.width, needed_width(c)))


def mutate_gaps(c: Cert, rng: random.Random) -> Cert:
    d = c.d_vocab
    gaps = [r[:] for r in c.gaps]
    for _ in range(rng.randint(1, 3)):
        q = rng.randrange(d)
        m = rng.randrange(q, d)
        gaps[q][m] = rng.randint(-2, m - 1)
    return replace(c, gaps=gaps)


def test_honest_certificate_is_accepted(honest):
    rep = check_certificate_text(render_certificate(honest))
    assert rep.ok and rep.count == honest.count
    assert honest.count <= truth(honest.cert)


@pytest.mark.parametrize("kind", ["weights", "gaps", "both"])
def test_no_mutation_is_accepted_with_a_false_claim(honest, kind):
    rng = random.Random(hash(kind) % 1000)
    rejected = accepted = 0
    for _ in range(12):
        c = honest.cert
        if kind in ("weights", "both"):
            c = mutate_weights(c, rng)
        if kind in ("gaps", "both"):
            c = mutate_gaps(c, rng)
        claim = honest.count
        v = check(c, claim)
        if v.ok:
            accepted += 1
            assert claim <= truth(c), (kind, v)
        else:
            rejected += 1
            # whatever the mirror does certify on the mutated model is still true
            v0 = check(c, 0)
            if v0.ok:
                assert v0.count <= truth(c)
    assert rejected > 0, f"no {kind} mutation was rejected: the test could not fail"


def test_claimed_count_above_the_proof_is_rejected(honest):
    for extra in (1, 2, 1000):
        assert not check(honest.cert, honest.count + extra).ok
    assert check(honest.cert, honest.count - 1).ok  # a weaker claim is fine


def test_out_of_range_and_encoding_edits_are_rejected(honest):
    data = encode_cert(honest.cert)
    d = data.d_vocab
    high = [replace(data, W_E=data.W_E + (1 << (data.weight_bits * d * data.d_model))),  # a digit beyond
            replace(data, gaps=data.gaps + (1 << (data.gap_bits * d * d))),
            replace(data, width=1), replace(data, weight_bits=1), replace(data, isq_lo=data.isq_hi + 1),
            replace(data, isq_hi=0)]
    for bad in high:
        assert not check(bad, 0).ok, bad
    # a threshold above m - 1, as a digit
    g = checker.decode_rows(data.gaps, data.gap_bits, d, d, checker.Ops())
    g[0][0] = 5  # s[0][0] = 3 > -1
    bad = replace(data, gaps=checker.encode_digits([x for r in g for x in r], data.gap_bits))
    assert not check(bad, 0).ok and "outside" in check(bad, 0).reason
    assert isinstance(bad, CertData)


@pytest.mark.parametrize("edit", [
    lambda t: t.replace("weightShift := ", "weightShift := 1", 1),  # a different number
    lambda t: re.sub(r"(  wQ := 0x)([0-9a-f])", lambda m: m.group(1) + ("1" if m.group(2) != "1" else "2"), t, 1),
    lambda t: re.sub(r"  wK := 0x([0-9a-f]+),", lambda m: f"  wK := {int(m.group(1), 16)},", t, 1),  # decimal
    lambda t: re.sub(r"  wV := 0x", "  wV := 0x0", t, 1),  # a leading zero: not canonical
    lambda t: re.sub(r"weightBits := (\d+)", lambda m: f"weightBits := {int(m.group(1)) + 4}", t, 1),
    lambda t: re.sub(r"maxHeartbeats \d+", "maxHeartbeats 0", t, 1),  # unbounded: refused
    lambda t: re.sub(r"maxHeartbeats (\d+)", lambda m: f"maxHeartbeats {int(m.group(1)) + 1}", t, 1),
    lambda t: re.sub(r"maxHeartbeats (\d+)", lambda m: f"maxHeartbeats {int(m.group(1)) * 84}", t, 1),
    lambda t: t.replace("set_option maxHeartbeats", "set_option maxHeartbeats 0 in\nset_option maxHeartbeats", 1),
    lambda t: re.sub(r"^set_option maxHeartbeats \d+ in\n", "", t, count=1, flags=re.MULTILINE),  # the default
    # the kernel skipped (issue 18): `addDecl` would add the theorem unchecked
    lambda t: t.replace("set_option maxRecDepth", "set_option debug.skipKernelTC true in\nset_option maxRecDepth", 1),
    lambda t: t.replace("theorem cert", "set_option debug.skipKernelTC true in\ntheorem cert", 1),
    lambda t: t.replace("import MaxKCert.Checker\n", "import MaxKCert.Checker\nset_option debug.skipKernelTC true\n", 1),
    lambda t: t.replace("end MaxKCert.Certs.", "set_option debug.skipKernelTC true\nend MaxKCert.Certs.", 1),
    lambda t: t.replace("strategy: gap", "strategy: subcubic", 1),  # the archived name with today's budget
    lambda t: t.replace("strategy: gap", "strategy: cubic", 1),
    lambda t: t.replace("gaps := 0x", "gaps := -0x", 1),  # a negative numeral
    lambda t: t.replace("  width := ", "  width := [1, 2] ++ ", 1),
])
def test_format_edits_are_rejected(honest, edit):
    text = render_certificate(honest)
    bad = edit(text)
    assert bad != text
    rep = check_certificate_text(bad)
    assert not rep.ok
    assert rep.checker_ops == 0  # refused from the text alone, before the checker runs (fast)


def test_generated_lean_has_cheap_literals(honest):
    """No negative numeral, no list literal longer than 32 elements (lean4 #5683) in the
    generated certificate; every matrix is one hexadecimal natural."""
    text = render_certificate(honest)
    code = re.sub(r"/-.*?-/", "", text, flags=re.DOTALL)
    code = "\n".join(line.split("--")[0] for line in code.splitlines())
    assert not re.search(r"-\s*\d", code)
    for lst in re.findall(r"\[([^\[\]]*)\]", code):
        assert lst.count(",") + 1 <= 32
    for field in ("wE", "wPos", "wQ", "wK", "wV", "wO", "wU", "gaps"):
        assert re.search(rf"^  {field} := 0x[0-9a-f]+,?$", text, re.MULTILINE), field


@pytest.mark.parametrize("field,value", [("width", 10**12), ("dVocab", 10**6), ("weightBits", 10**9),
                                         ("gapBits", 10**7)])
def test_huge_sizes_fail_fast_before_any_allocation(honest, field, value):
    """A hand-edited size must be refused at parse time (the cap's message), before any
    allocation of that size."""
    text = re.sub(rf"(  {field} := )\d+", lambda m: f"{m.group(1)}{value}", render_certificate(honest), 1)
    rep = check_certificate_text(text)
    assert not rep.ok and f"{field}={value}" in rep.reason and "beyond what any float32 model" in rep.reason


def test_an_edited_header_line_is_refused(honest):
    """The header is a comment Lean ignores, but it must not contradict the proof."""
    text = render_certificate(honest)
    bad = text.replace(f"claim: at least {honest.count} of", f"claim: at least {honest.count + 7} of", 1)
    assert bad != text and not check_certificate_text(bad).ok
    older = text.replace("generated by certify ", "generated by certify 0.0.9-", 1)  # another tool version
    assert check_certificate_text(older).ok
