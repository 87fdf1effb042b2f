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

# --- the heartbeat budget (docs/lean-timings.md, "The heartbeat budget", cites the sources) ---
# What the kernel counts: one heartbeat per `check_system(..., true)` call
# (src/runtime/interrupt.cpp, `check_system` -> `check_heartbeat` -> `g_heartbeat++`), and it
# stops with "(kernel) deterministic timeout" once that count exceeds the limit
# `lean_add_decl` installs (`scope_max_heartbeat`), which is `Core.getMaxHeartbeats opts`
# = maxHeartbeats * 1000 (src/Lean/CoreM.lean; passed by `Environment.addDeclAux` in
# src/Lean/AddDecl.lean). src/kernel/type_checker.cpp calls `check_system` at the top of
# `whnf_core` (every call, recursive ones included), `infer_type_core` and the definitional
# equality test. One estimated step (one iteration of `whnf`'s loop: a `whnf_core`, then
# `reduce_nat` or one delta unfolding) makes a few such calls: `whnf_core` on the head and
# again on the beta-reduced result, `whnf` of each literal argument in `reduce_nat`.
KERNEL_HEARTBEATS_PER_STEP = 4  # check_system calls per estimated step (an estimate, not a measurement)
SAFETY_FACTOR = 16  # the budget is 16x the estimated need, then at least Lean's default
LEAN_DEFAULT_MAX_HEARTBEATS = 200_000  # `register_builtin_option maxHeartbeats`, src/Lean/CoreM.lean
LEAN_HEARTBEAT_UNIT = 1000  # `Core.getMaxHeartbeats opts = maxHeartbeats.get opts * 1000`
LEGACY_HEARTBEATS_PER_STEP = 10  # the budget of the certificates archived before issue 18


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


def kernel_heartbeats_needed(steps: int) -> int:
    """The kernel's estimated heartbeats (check_system calls) for `steps` estimated steps."""
    return KERNEL_HEARTBEATS_PER_STEP * steps


def heartbeat_budget(steps: int) -> int:
    """`set_option maxHeartbeats N` for a certificate whose check is estimated at `steps`
    kernel steps: SAFETY_FACTOR times the estimated kernel heartbeats, in Lean's unit of
    1000, rounded up to a multiple of 100000 and at least Lean's default 200000. Finite and
    small, so that a rejected certificate fails in bounded time: the kernel stops at
    N * 1000 heartbeats, and `decide`'s error path re-reduces the instance in the
    elaborator's `whnf` under the same N (thousands of small allocations)."""
    n = -(-SAFETY_FACTOR * kernel_heartbeats_needed(steps) // LEAN_HEARTBEAT_UNIT)
    return max(LEAN_DEFAULT_MAX_HEARTBEATS, -(-n // 100_000) * 100_000)


def legacy_heartbeat_budget(steps: int) -> int:
    """The budget written into certificates before issue 18 (10 thousand-heartbeat units per
    estimated step, about 1.7e10 kernel heartbeats for seed 123): kept only so that archived
    certificates re-render byte-identically and still check."""
    n = LEGACY_HEARTBEATS_PER_STEP * steps
    return max(LEAN_DEFAULT_MAX_HEARTBEATS, -(-n // 100_000) * 100_000)


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
