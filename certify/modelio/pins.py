"""The CPU pins that make training repeatable, torch-free so they can be set before
torch loads: by the command line, and by every remote sweep job (a Dask worker's
environment cannot be trusted to carry them).

Training bits depend on the CPU code paths torch takes (ATen's vectorised kernels and
MKL's dispatch). Pinning them before torch is imported makes new training repeatable
across machines that honour the pins (x86 with MKL); ARM takes other paths still.
"""

from __future__ import annotations

import os
import sys

CPU_PINS = {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE"}


def wanted_pins() -> dict[str, str]:
    """The pins this process asks for: CPU_PINS, or none under CERTIFY_CPU_PINS=off."""
    return {} if os.environ.get("CERTIFY_CPU_PINS", "on") == "off" else dict(CPU_PINS)


def pin_cpu_code_paths() -> None:
    """Set CPU_PINS in the environment (child processes inherit them), unless
    CERTIFY_CPU_PINS=off, or torch is already imported (then they could not apply)."""
    if "torch" in sys.modules:
        return
    os.environ.update(wanted_pins())


def mismatch(capability: str | None, mkl_cbwr: str | None, pins: dict[str, str]) -> str | None:
    """Why training with this reported CPU capability and MKL_CBWR is not under `pins`
    (None: it is). Torch reports the pinned capability `default` as `DEFAULT`."""
    problems = []
    want_cap = pins.get("ATEN_CPU_CAPABILITY")
    if want_cap is not None and str(capability).upper() != want_cap.upper():
        problems.append(f"CPU capability {capability}, not {want_cap.upper()}")
    want_mkl = pins.get("MKL_CBWR")
    if want_mkl is not None and mkl_cbwr != want_mkl:
        problems.append(f"MKL_CBWR {mkl_cbwr or 'unset'}, not {want_mkl}")
    return "; ".join(problems) or None


def apply_pins_before_torch(pins: dict[str, str]) -> str | None:
    """In a worker: set `pins` if torch is not loaded yet; otherwise check that the
    loaded torch runs under them. Returns why it does not (None: pinned)."""
    if "torch" not in sys.modules:
        os.environ.update(pins)
    import torch
    return mismatch(torch.backends.cpu.get_cpu_capability(), os.environ.get("MKL_CBWR"), pins)


def sidecar_mismatch(meta: dict, pins: dict[str, str]) -> str | None:
    """Why a model's sidecar says it was trained outside `pins` (None: within them)."""
    env = meta.get("trained_with") or {}
    if not pins:
        return None
    if not env:
        return "its sidecar does not say how it was trained (no trained_with)"
    return mismatch(env.get("cpu_capability"), env.get("mkl_cbwr"), pins)
