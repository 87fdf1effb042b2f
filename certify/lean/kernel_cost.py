"""A model of the Lean kernel's work for one certificate: weighted operation counts.

The checker mirror counts its operations (`certify.lean.checker.Ops`): Nat operations (and
list-walk steps) and Int operations. The kernel's cost per operation, counted in
iterations of `type_checker::whnf` (src/kernel/type_checker.cpp: each iteration is one
`whnf_core` step - beta, projection, iota on a constructor - then `reduce_nat`, else one
delta unfolding `unfold_definition`):

* Nat operation, written as a direct call `Nat.add a b` (`Nat.ble`, `Nat.land`, ...) on
  literals: `reduce_nat` fires on the head constant (it compares the head with
  `Nat.add`, `Nat.sub`, `Nat.mul`, `Nat.div`, `Nat.mod`, `Nat.gcd`, `Nat.beq`, `Nat.ble`,
  `Nat.land`, `Nat.lor`, `Nat.xor`, `Nat.shiftLeft`, `Nat.shiftRight`, `Nat.pow`): 1 step,
  plus about 2 for the call that consumes it (the delta/beta of the helper, the `cond`
  and its `Bool.casesOn` iota, a structure projection). NAT_STEPS = 3. (Written `a + b`,
  the kernel first unfolds `HAdd.hAdd`, `instHAdd`, `Add.add`, `instAddNat` with their
  projections: about 6 more steps; the checker's hot code calls the functions by name.)
* Int operation, arithmetic (`a + b`, `a - b`, `a * b`, `>>>`, `Int.toNat`, `=`): the
  instance chain (`HAdd.hAdd` -> `instHAdd` -> `Add.add` -> `Int.instAddInt` -> `Int.add`,
  about 6 steps), the `match m, n` on `ofNat`/`negSucc` (`Int.add`, `Int.mul` are compiled
  with `bootstrap.genMatcherCode false`: two `Int.casesOn` iota steps), then the inner Nat
  operation through its own instance chain (about 7) - 14 for two non-negatives; with
  mixed signs `subNatNat` adds a `match (n - m : Nat)` (about 8 more): 22. `a - b` is
  `Int.sub` = `a + -b` (`Int.neg`, `negOfNat`: about 6 more). Taken at 20, plus 2 for the
  consumer: INT_STEPS = 22. (src/Init/Data/Int/Basic.lean: `Int.neg`, `subNatNat`,
  `Int.add`, `Int.mul`, `Int.sub`; instances `instNegInt`, `Add Int`, `Mul Int`, `Sub Int`.)
* Int comparison (`decide (a < b)`, `decide (a <= b)`): `Decidable.decide` -> `Int.decLt`
  -> `decNonneg (b - (a + 1))` (`Int.lt a b := (a + 1) <= b`, `Int.le a b := NonNeg (b - a)`):
  an `Int.add` (a + 1, with the `OfNat Int 1` instance), an `Int.sub` = `Int.neg` +
  `Int.add` with mixed signs (`subNatNat`), the `decNonneg` match and `decide`'s match:
  about 55 steps, plus 2: INT_CMP_STEPS = 57.

These are estimates read off the definitions, not measurements (no Lean toolchain here;
`make lean-check` times real builds). Only the checker's operation counts are measured.
"""

from __future__ import annotations

from dataclasses import dataclass

NAT_STEPS = 3
INT_STEPS = 22
INT_CMP_STEPS = 57
STEPS_PER_MINUTE = 250_000  # third-party yardstick for `decide +kernel` (../shared/lean-notes.md)
HEARTBEATS_PER_STEP = 10  # maxHeartbeats (units of 1000 heartbeats) per estimated step: generous


@dataclass(frozen=True)
class KernelWork:
    nat_ops: int
    int_ops: int  # all Int operations, comparisons included
    int_cmp_ops: int  # of which comparisons

    @property
    def steps(self) -> int:
        return (NAT_STEPS * self.nat_ops + INT_STEPS * (self.int_ops - self.int_cmp_ops)
                + INT_CMP_STEPS * self.int_cmp_ops)


def kernel_work(ops) -> KernelWork:
    """From a checker `Ops` (the current checker performs no Int operation)."""
    return KernelWork(ops.nat, ops.int, getattr(ops, "cmp", 0))


def heartbeat_budget(steps: int) -> int:
    """`set_option maxHeartbeats N` for a certificate whose check is estimated at `steps`
    kernel steps: HEARTBEATS_PER_STEP thousand heartbeats per step (Lean counts
    maxHeartbeats in thousands), rounded up to a multiple of 100000 and at least Lean's
    default 200000. Finite, so a rejected certificate fails in bounded time."""
    n = HEARTBEATS_PER_STEP * steps
    return max(200_000, -(-n // 100_000) * 100_000)


# The checker before issue 11 (Int arithmetic; commit 33280eb, checker_ops 222,282), on
# the committed seed-123 certificate, measured by benchmarks/kernel_work.py on that code
# with comparisons counted separately: kept so that the comparison stays reproducible.
LEGACY_SEED123 = KernelWork(nat_ops=24_541, int_ops=197_741, int_cmp_ops=46_745)


def ops_bound(d: int, K: int, dm: int, dh: int) -> int:
    """A generous bound on the checker's operations from the dimensions alone (so that the
    budget written into a certificate depends on nothing but its shape): path tables,
    derived tables, family checks, plus a quarter. A test pins it above the measured
    count on every test configuration and on the committed certificates."""
    tables = (4 * dm * (3 * dh + 2 * (d + K) + 2 * d) + 4 * dm * dh
              + 2 * ((d + K) ** 2 + (d + K) * d + d * d) + 2 * (d * dm + K * dm + 4 * dm * dh + dm * d + d * d) + 200)
    context = 6000 + 5 * d * (2 * d + K) + 6 * d * d + d * (30 * K + 3 * d + 60)
    families = d * (d + 1) // 2 * (40 + 25 * (K - 1)) + 2 * d * d
    return (tables + context + families) * 5 // 4
