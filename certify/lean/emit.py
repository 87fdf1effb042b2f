"""Lean certificates: render (jinja2 templates), parse back, emit to `lean/`, re-check.

`certify check` parses the `.lean` file itself and re-checks exactly what Lean would:
the whole file, header comment included, must be the canonical rendering of what was
parsed out of it in one of the known formats (`FORMATS`: today's, and the archived one
of the certificates committed before issue 18), so nothing outside the parsed data can
change Lean's view (no added `set_option`, no other heartbeat budget) and no header line
can contradict the proof; only the generating tool's version may differ,
the weights must match the recorded sha256, and the Python mirror of the Lean checker
must accept the claimed count.
"""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Callable

import jinja2
import numpy as np

from .. import __version__
from .checker import WEIGHT_FIELDS, Cert, CertData, Reject, Verdict, check, decode_cert, encode_cert
from .kernel_cost import NAT_STEPS, heartbeat_budget, legacy_heartbeat_budget, ops_bound
from ..modelio.digest import WEIGHT_NAMES, weights_sha256_arrays
from ..modelio.files import atomic_write_text

# The jinja2 templates live at the repository's top level (templates/, as the design card
# lays out); a wheel maps them into this package (pyproject: package-dir), so an installed
# package finds them beside this file and a checkout finds them at the top.
_HERE = Path(__file__).resolve().parent
TEMPLATES = next((d for d in (_HERE / "templates", _HERE.parents[1] / "templates") if (d / "certificate.lean.j2").is_file()),
                 _HERE / "templates")
_CHECKOUT_LEAN = Path(__file__).resolve().parents[2] / "lean"
# the Lake project of this checkout; for an installed package, ./lean
LEAN_DIR = _CHECKOUT_LEAN if (_CHECKOUT_LEAN / "lakefile.toml").exists() else Path("lean")
TOOLCHAIN = "leanprover/lean4:v4.34.1"
LEAN_FIELDS = {"W_E": "wE", "W_pos": "wPos", "W_Q": "wQ", "W_K": "wK", "W_V": "wV", "W_O": "wO",
               "W_U": "wU"}
EMITTABLE = ("gap", "subcubic")  # strategies with a Lean checker (`subcubic`: the old name of `gap`)


@dataclass(frozen=True)
class CertificateFormat:
    """One rendering of a certificate that `certify check` accepts. Both render the same
    template; they differ only in what the header and the JSON summary call the gap proof
    and in the theorem's `maxHeartbeats` (from the estimated kernel steps)."""
    name: str
    strategy_label: str
    heartbeats: Callable[[int], int]


# What `certify run` writes now: `strategy: gap`, a budget near Lean's default (issue 18).
CURRENT_FORMAT = CertificateFormat("current", "gap", heartbeat_budget)
# The certificates committed before issue 18 (the archived Intel seed-123 one among
# them): `strategy: subcubic` (the gap proof's old name) and the old, far larger budget.
# Accepted by `certify check` so that archived files stay byte-identical; never written.
ARCHIVED_FORMAT = CertificateFormat("archived (before issue 18)", "subcubic", legacy_heartbeat_budget)
FORMATS = (CURRENT_FORMAT, ARCHIVED_FORMAT)


# Sizes no honest certificate exceeds: float32 weights need at most 149 + 24 fraction
# bits and 128 + 149 + 2 digit bits; dimensions beyond these are far out of reach of
# the checker anyway. `certify check` refuses larger values before allocating.
SIZE_CAPS = {"dVocab": 1 << 12, "nCtx": 1 << 8, "dModel": 1 << 12, "dHead": 1 << 12, "weightShift": 400,
             "weightBits": 400, "width": 1 << 13, "gapBits": 64, "isqLo": 1 << 256, "isqHi": 1 << 256}


class CertificateError(ValueError):
    """A certificate file that cannot be parsed or does not check."""


def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), undefined=jinja2.StrictUndefined,
                              keep_trailing_newline=True, autoescape=False)


def module_label(seed: int | None, model_name: str | None) -> str:
    """'Seed123' for a seed model; 'Model' plus the name's letters and digits for a user's."""
    if seed is not None:
        return f"Seed{seed}"
    return "Model" + re.sub(r"[^A-Za-z0-9]", "", model_name or "")[:40]


def module_name(d_vocab: int, n_ctx: int, d_model: int, d_head: int, label: str, sha256: str) -> str:
    """The Lean module: sizes, the model's label, and the weights' digest (8 hex digits),
    so that two models never share a file (the archive is append-only)."""
    return f"V{d_vocab}K{n_ctx}M{d_model}H{d_head}{label}_{sha256[:8]}"


@dataclass(frozen=True)
class CertificateFile:
    """Everything a certificate file says."""
    cert: Cert
    count: int
    seed: int | None
    sha256: str
    strategy: str
    model_name: str | None = None  # a user model's name (None for seed models)
    source: str | None = None  # the file a user model was imported from
    assumptions: tuple[str, ...] = ()  # e.g. an architecture assumed without a config

    @property
    def module(self) -> str:
        c = self.cert
        return module_name(c.d_vocab, c.n_ctx, c.d_model, c.d_head, module_label(self.seed, self.model_name),
                           self.sha256)

    @property
    def total(self) -> int:
        return self.cert.d_vocab ** self.cert.n_ctx


def kernel_budget(c: Cert, fmt: CertificateFormat = CURRENT_FORMAT) -> int:
    """The theorem's `maxHeartbeats`, sized from the kernel cost model: the estimated
    steps of a bound on the checker's operations that depends only on the dimensions
    (`kernel_cost.ops_bound`), so an edited weight cannot change the budget line."""
    return fmt.heartbeats(NAT_STEPS * ops_bound(c.d_vocab, c.n_ctx, c.d_model, c.d_head))


def check_header_text(label: str, value: str | None) -> None:
    """A free-text header value stays on one line inside the header comment: printable
    ASCII, and neither '/-' nor '-/' (Lean block comments nest, so either would swallow
    or end the header and `lake build` would fail where `certify check` passes)."""
    if value is None:
        return
    bad = re.search(r"[^\x20-\x7e]|/-|-/", value)
    if bad:
        raise CertificateError(f"{label} {value!r} cannot go in a certificate header: it holds {bad.group()!r} "
                               "(only printable ASCII, and neither '/-' nor '-/')")


def render_certificate(cf: CertificateFile, version: str = __version__,
                       fmt: CertificateFormat = CURRENT_FORMAT) -> str:
    if cf.strategy not in EMITTABLE:
        raise CertificateError(f"strategy {cf.strategy!r} has no Lean checker; emittable: {', '.join(EMITTABLE)}")
    for label, value in [("model name", cf.model_name), ("source", cf.source), ("version", version),
                         *(("assumption", a) for a in cf.assumptions)]:
        check_header_text(label, value)
    c = cf.cert
    data = encode_cert(c)
    matrices = [(LEAN_FIELDS[n], f"0x{getattr(data, n):x}") for n in WEIGHT_FIELDS]
    return _env().get_template("certificate.lean.j2").render(
        version=version, c=c, data=data, seed="none" if cf.seed is None else cf.seed,
        model_name=cf.model_name or "-", source=cf.source or "-", assumptions=cf.assumptions,
        sha256=cf.sha256, strategy=fmt.strategy_label, count=cf.count, total=cf.total, module=cf.module,
        matrices=matrices, gaps=f"0x{data.gaps:x}", heartbeats=kernel_budget(c, fmt))


def _field_text(text: str, name: str) -> str:
    """The value text of `  name := ...` up to its closing bracket or end of line."""
    m = re.search(rf"^  {name} := ", text, re.MULTILINE)
    if not m:
        raise CertificateError(f"certificate has no field '{name}'")
    i = m.end()
    if text[i] != "[":
        return text[i:text.index("\n", i)].rstrip(",")
    depth = 0
    for j in range(i, len(text)):
        depth += {"[": 1, "]": -1}.get(text[j], 0)
        if depth == 0:
            return text[i:j + 1]
    raise CertificateError(f"field '{name}' is not closed")


def _header(text: str, key: str) -> str:
    m = re.search(rf"^{key}: (\S+)$", _header_block(text), re.MULTILINE)
    if not m:
        raise CertificateError(f"certificate header has no '{key}:' line")
    return m.group(1)


def _header_line(text: str, key: str) -> str:
    """A header value that may hold spaces (a file or model name); '-' when absent."""
    m = re.search(rf"^{key}: (.+)$", _header_block(text), re.MULTILINE)
    return m.group(1) if m else "-"


def _header_block(text: str) -> str:
    """The leading comment, where the header lines live (nothing after it counts)."""
    end = text.find("-/")
    return text[:end] if text.startswith("/-") and end > 0 else ""


def parse_certificate(text: str) -> CertificateFile:
    """Read a rendered certificate back; refuse anything that is not its canonical form."""
    try:
        ints = {n: int(_field_text(text, n)) for n in
                ("dVocab", "nCtx", "dModel", "dHead", "weightShift", "weightBits", "width", "isqLo", "isqHi",
                 "gapBits")}
        nats = {py: _nat_literal(_field_text(text, lean)) for py, lean in LEAN_FIELDS.items()}
        gaps = _nat_literal(_field_text(text, "gaps"))
        claim = re.search(r"^theorem cert : _root_\.MaxKCert\.check data (\d+) = true := by decide \+kernel$",
                          text, re.MULTILINE)
        if not claim:
            raise CertificateError("no `theorem cert : _root_.MaxKCert.check data N = true := by decide +kernel` line")
        seed_text, sha, strategy = _header(text, "seed"), _header(text, "weights_sha256"), _header(text, "strategy")
        seed = None if seed_text == "none" else int(seed_text)
        model_name = _header_line(text, "model")
        source = _header_line(text, "source")
        assumptions = tuple(re.findall(r"^assumption: (.+)$", _header_block(text), re.MULTILINE))
    except ValueError as err:
        raise CertificateError(f"malformed certificate: {err}") from None
    if min(ints.values()) < 0 or ints["weightBits"] < 1 or ints["gapBits"] < 1 or \
            min(ints["dVocab"], ints["nCtx"], ints["dModel"], ints["dHead"]) < 1:
        raise CertificateError("malformed certificate: a dimension or digit width is out of range")
    too_big = [f"{k}={ints[k]}" for k, cap in SIZE_CAPS.items() if ints[k] > cap]
    if too_big:  # refuse before any allocation of that size (an edited file must fail fast)
        raise CertificateError(f"malformed certificate: {', '.join(too_big)} beyond what any float32 model "
                               f"needs (caps: {SIZE_CAPS})")
    data = CertData(ints["dVocab"], ints["nCtx"], ints["dModel"], ints["dHead"], ints["weightShift"],
                    ints["weightBits"], *(nats[n] for n in WEIGHT_FIELDS), width=ints["width"],
                    isq_lo=ints["isqLo"], isq_hi=ints["isqHi"], gap_bits=ints["gapBits"], gaps=gaps)
    if strategy not in {f.strategy_label for f in FORMATS}:
        raise CertificateError(f"certificate header names strategy {strategy!r}; a certificate is a gap proof "
                               f"(`strategy: gap`, or `subcubic` in archived ones)")
    cf = CertificateFile(decode_cert(data), int(claim.group(1)), seed, sha, "gap",
                         model_name=None if model_name == "-" else model_name,
                         source=None if source == "-" else source, assumptions=assumptions)
    if matching_format(cf, text) is None:
        raise CertificateError("the file's Lean code is not the canonical rendering of its own content "
                               "(edited by hand or by another tool version?); refusing to check it")
    return cf


def matching_format(cf: CertificateFile, text: str) -> CertificateFormat | None:
    """The format in which `text` is exactly the rendering of `cf`, or None. The whole file,
    header comment included: a header that contradicts the proof (an edited claim line) is
    refused too; only the tool version may differ."""
    version = _generator_version(text)
    try:
        return next((fmt for fmt in FORMATS if render_certificate(cf, version, fmt) == text), None)
    except Reject:  # the decoded content cannot be re-encoded: not a canonical file
        return None


def _nat_literal(value: str) -> int:
    """A natural literal as the file writes it: `0x` and lowercase hex digits."""
    if not re.fullmatch(r"0x[0-9a-f]+", value):
        raise ValueError(f"{value[:40]!r} is not a hexadecimal natural literal")
    return int(value, 16)


def _generator_version(text: str) -> str:
    m = re.search(r"^Max-of-K accuracy certificate, generated by certify (\S+) from ", _header_block(text), re.MULTILINE)
    if not m:
        raise CertificateError("certificate header has no 'generated by certify VERSION' line")
    return m.group(1)


def cert_weights_sha256(c: Cert) -> str:
    """sha256 of the float32 weights the certificate's integers stand for, in the one
    canonical form (`modelio.digest`: zeros hashed as +0.0, which is what an integer 0 is)."""
    arrays = {}
    for name in WEIGHT_NAMES:
        rows = getattr(c, name)
        vals = np.array([[float(x) * 2.0 ** -c.weight_shift for x in r] for r in rows], dtype=np.float64)
        exact = all(int(v * 2.0 ** c.weight_shift) == x for r, vr in zip(rows, vals) for x, v in zip(r, vr))
        as32 = vals.astype(np.float32)
        if not exact or not np.array_equal(as32.astype(np.float64), vals):
            raise CertificateError(f"{name}: an entry is not exactly a float32 weight")
        arrays[name] = as32
    return weights_sha256_arrays(arrays)


@dataclass(frozen=True)
class CheckReport:
    ok: bool
    count: int
    claimed: int
    total: int
    reason: str
    checker_ops: int
    format: str = ""  # the FORMATS entry the file is rendered in ("" when it was refused first)


def check_certificate_text(text: str) -> CheckReport:
    try:
        cf = parse_certificate(text)
        if cert_weights_sha256(cf.cert) != cf.sha256:
            raise CertificateError("the weights do not match the recorded weights_sha256 (a weight was changed)")
    except CertificateError as err:
        return CheckReport(False, 0, 0, 0, str(err), 0)
    fmt = matching_format(cf, text)
    v: Verdict = check(cf.cert, cf.count)
    return CheckReport(v.ok, v.count, cf.count, cf.total, v.reason, v.ops, fmt.name if fmt else "")


@dataclass(frozen=True)
class Emitted:
    lean_path: Path
    summary_path: Path
    count: int
    total: int
    checker_ops: int


def write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        atomic_write_text(path, text)


def emit(cf: CertificateFile, checker_ops: int, lean_dir: Path = LEAN_DIR) -> Emitted:
    """Write the certificate module and its JSON summary; refresh the root and audit modules."""
    ensure_lean_project(lean_dir)
    certs = lean_dir / "MaxKCert" / "Certs"
    lean_path, summary_path = certs / f"{cf.module}.lean", certs / f"{cf.module}.json"
    c = cf.cert
    summary = {"seed": cf.seed, "model": cf.model_name, "source": cf.source,
               "assumptions": list(cf.assumptions), "config": {"d_vocab": c.d_vocab, "n_ctx": c.n_ctx, "d_model": c.d_model,
                                           "d_head": c.d_head},
               "weights_sha256": cf.sha256, "strategy": CURRENT_FORMAT.strategy_label, "count": cf.count, "total": cf.total,
               "bound": cf.count / cf.total, "checker_ops": checker_ops, "toolchain": TOOLCHAIN,
               "module": f"MaxKCert.Certs.{cf.module}", "certify_version": __version__}
    refuse_other_weights(lean_path, cf.sha256)
    write_if_changed(lean_path, render_certificate(cf))
    write_if_changed(summary_path, json.dumps(summary, indent=2, sort_keys=True) + "\n")
    refresh_index(lean_dir)
    return Emitted(lean_path, summary_path, cf.count, cf.total, checker_ops)


PROJECT_FILES = ("lakefile.toml", "lean-toolchain", "MaxKCert/Checker.lean")  # hand-written, not generated


def ensure_lean_project(lean_dir: Path) -> None:
    """A certificate needs a Lake project that holds the checker. A new or empty
    directory is made into one (from this checkout's lean/); anything else that is not
    one is refused, so no half project is ever written."""
    if all((lean_dir / f).is_file() for f in PROJECT_FILES):
        return
    if lean_dir.exists() and (not lean_dir.is_dir() or any(lean_dir.iterdir())):
        raise CertificateError(f"{lean_dir}: not a certify Lake project (it lacks "
                               f"{', '.join(f for f in PROJECT_FILES if not (lean_dir / f).is_file())}); "
                               "give the project's lean/ directory, or a new or empty directory")
    if not all((_CHECKOUT_LEAN / f).is_file() for f in PROJECT_FILES):
        raise CertificateError(f"cannot create a Lake project in {lean_dir}: this installation has no lean/ "
                               "to copy it from; copy lean/ from the certify repository there first")
    for f in PROJECT_FILES:
        (lean_dir / f).parent.mkdir(parents=True, exist_ok=True)
        (lean_dir / f).write_bytes((_CHECKOUT_LEAN / f).read_bytes())


def check_lean_dir_writable(lean_dir: Path) -> None:
    """Before any proof: the certificate can be written into `lean_dir` (a Lake project,
    or a new or empty directory that will become one), so a read-only or foreign
    directory fails at once, not after minutes of proofs."""
    is_project = all((lean_dir / f).is_file() for f in PROJECT_FILES)
    if lean_dir.exists() and not is_project and (not lean_dir.is_dir() or any(lean_dir.iterdir())):
        ensure_lean_project(lean_dir)  # refuses a foreign directory (writes nothing)
    target = lean_dir
    for d in (lean_dir / "MaxKCert" / "Certs", lean_dir / "MaxKCert", lean_dir, *lean_dir.absolute().parents):
        if d.exists():
            target = d
            break
    if not target.is_dir():
        raise CertificateError(f"--lean-dir {lean_dir}: {target} is not a directory")
    try:  # a real write: permissions, read-only mounts and quotas all show here
        with tempfile.TemporaryFile(dir=target):
            pass
    except OSError as err:
        raise CertificateError(f"--lean-dir {lean_dir}: cannot write in {target} ({err.strerror or err}); "
                               "give a writable directory") from None


def refuse_other_weights(lean_path: Path, sha256: str) -> None:
    """The archive is append-only: never replace a certificate about other weights."""
    if not lean_path.exists():
        return
    m = re.search(r"^weights_sha256: (\S+)$", lean_path.read_text(encoding="utf-8"), re.MULTILINE)
    if m is None or m.group(1) != sha256:
        raise CertificateError(f"{lean_path} already holds a certificate for weights "
                               f"{m.group(1) if m else '(unreadable)'}, not {sha256}; refusing to replace it "
                               "(move it away if you mean to)")


def refresh_index(lean_dir: Path = LEAN_DIR) -> None:
    """Root module importing every certificate, and the axiom audit over all of them."""
    modules = sorted(p.stem for p in (lean_dir / "MaxKCert" / "Certs").glob("*.lean"))
    env = _env()
    write_if_changed(lean_dir / "MaxKCert.lean", env.get_template("root.lean.j2").render(modules=modules))
    write_if_changed(lean_dir / "MaxKCertAudit.lean", env.get_template("audit.lean.j2").render(modules=modules))


assert {f.name for f in fields(Cert)} >= set(WEIGHT_NAMES)
