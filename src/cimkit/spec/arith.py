"""Approximate integer arithmetic by name, without torch: which multipliers and adders exist (``Multiplier``,
``Adder``, parsed from names such as ``"drum-6"`` or ``"loa-4"``) and their energy relative to the exact designs
(``relative_energy``, ``ENERGY``, ``ENERGY_SOURCES``). The spec validates ``digital.multiplier`` /
``digital.adder`` and the cost model prices them from here; ``cimkit.ops.approx`` computes with them (calling a
``Multiplier`` or ``Adder`` on tensors runs its torch kernel there)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from ..errors import InputError, check_int, short_repr

if TYPE_CHECKING:
    import torch

MULTIPLIER_BITS = (2, 16)
MULTIPLIER_BITS_WHY = (
    "products below 2**32, so int64 sums of up to 2**31 products are exact and float64 sums "
    "of up to 2**21 products are exact"
)
STAT_BITS = (2, 10)
STAT_BITS_WHY = "the exhaustive 2**bits x 2**bits table stays at most 2**20 pairs"
ADDER_K_MAX = 62  #: widest approximate low part (int64 two's complement)

MULTIPLIER_KINDS = ("exact", "truncate", "mitchell", "drum")
ADDER_KINDS = ("exact", "loa", "truncate")

_NAME_RE = re.compile(r"^([a-z]+)(?:-(\d+))?$")


@dataclass(frozen=True)
class Multiplier:
    """An approximate unsigned ``bits``-bit integer multiplier (see the module docstring for each ``kind``).

    ``kind``: one of ``MULTIPLIER_KINDS``; ``k``: the parameter of ``truncate`` (dropped low bits,
    ``1..bits-1``) and ``drum`` (kept leading bits, ``2..bits``), None otherwise; ``bits``: operand width
    (operands in ``0 .. 2**bits - 1``); ``name``: the canonical name (``"drum-6"``), filled in when empty.
    Call it on int64 tensors: ``Multiplier(...)(a, b)``."""

    kind: str
    k: int | None = None
    bits: int = 8
    name: str = ""

    def __post_init__(self) -> None:
        fn = "Multiplier"
        if self.kind not in MULTIPLIER_KINDS:
            raise InputError(
                f"{fn}: kind = {short_repr(self.kind)} is not allowed; allowed: {', '.join(MULTIPLIER_KINDS)}"
            )
        check_int(fn, "bits", self.bits, *MULTIPLIER_BITS, MULTIPLIER_BITS_WHY)
        if self.kind in ("exact", "mitchell"):
            if self.k is not None:
                raise InputError(
                    f"{fn}: k = {short_repr(self.k)} is not allowed for kind {self.kind!r}, which "
                    f"has no parameter; give k = None"
                )
        elif self.kind == "truncate":
            check_int(
                fn,
                "k",
                self.k,
                1,
                self.bits - 1,
                f"dropped low bits of each operand of a {self.bits}-bit truncate multiplier; "
                f"k = bits would drop everything",
            )
        else:
            check_int(
                fn,
                "k",
                self.k,
                2,
                self.bits,
                f"kept leading bits of each {self.bits}-bit operand of DRUM; DRUM needs 2 (the leading "
                f"one and the forced 1)",
            )
        canonical = self.kind if self.k is None else f"{self.kind}-{self.k}"
        if self.name != canonical:
            object.__setattr__(self, "name", canonical)

    @property
    def separable(self) -> bool:
        """Whether the product is ``exact(f(a), f(b))`` for a per-operand map ``f`` (``operand_map``)."""
        return self.kind != "mitchell"

    def __call__(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """The approximate product of unsigned ``bits``-bit int64 tensors ``a``, ``b`` (broadcast), int64."""
        fn = f"Multiplier({self.name})"
        from ..ops.approx import _check_unsigned, _unsigned_product

        a = _check_unsigned(fn, "a", a, self.bits)
        b = _check_unsigned(fn, "b", b, self.bits)
        return _unsigned_product(self, a, b)


def parse_multiplier(name, bits: int = 8) -> Multiplier:
    """The ``Multiplier`` named ``name`` (``"exact"``, ``"truncate-k"``, ``"mitchell"``, ``"drum-k"``) on
    ``bits``-bit operands. A ``Multiplier`` passes through (with its own ``bits``)."""
    if isinstance(name, Multiplier):
        return name
    return Multiplier(
        *_parse_name("parse_multiplier", "multiplier", name, MULTIPLIER_KINDS, ("truncate", "drum")), bits=bits
    )


def _parse_name(fn: str, what: str, name, kinds: tuple[str, ...], with_k: tuple[str, ...]) -> tuple[str, int | None]:
    allowed = ", ".join(f"'{k}-k'" if k in with_k else f"'{k}'" for k in kinds)
    match = _NAME_RE.match(name.strip().lower()) if isinstance(name, str) else None
    if match is None or match.group(1) not in kinds or (match.group(1) in with_k) != (match.group(2) is not None):
        raise InputError(f"{fn}: {what} = {short_repr(name)} is not allowed; allowed names: {allowed}")
    kind, k = match.group(1), match.group(2)
    return kind, None if k is None else int(k)


@dataclass(frozen=True)
class Adder:
    """An approximate two's complement integer adder (see the module docstring for each ``kind``).

    ``kind``: one of ``ADDER_KINDS``; ``k``: width of the approximate low part (``1..62``) for ``loa`` and
    ``truncate``, None for exact; ``name``: the canonical name (``"loa-4"``), filled in when empty. Call it
    on int64 tensors: ``Adder(...)(a, b)``."""

    kind: str
    k: int | None = None
    name: str = ""

    def __post_init__(self) -> None:
        fn = "Adder"
        if self.kind not in ADDER_KINDS:
            raise InputError(f"{fn}: kind = {short_repr(self.kind)} is not allowed; allowed: {', '.join(ADDER_KINDS)}")
        if self.kind == "exact":
            if self.k is not None:
                raise InputError(f"{fn}: k = {short_repr(self.k)} is not allowed for the exact adder; give None")
        else:
            check_int(fn, "k", self.k, 1, ADDER_K_MAX, "width of the approximate low part in an int64 sum")
        canonical = self.kind if self.k is None else f"{self.kind}-{self.k}"
        if self.name != canonical:
            object.__setattr__(self, "name", canonical)

    def __call__(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """The approximate sum of int64 tensors ``a``, ``b`` (broadcast; two's complement), int64."""
        fn = f"Adder({self.name})"
        from ..ops.approx import _add, _check_int64

        return _add(self, _check_int64(fn, "a", a), _check_int64(fn, "b", b))


def parse_adder(name) -> Adder:
    """The ``Adder`` named ``name`` (``"exact"``, ``"loa-k"``, ``"truncate-k"``); an ``Adder`` passes through."""
    if isinstance(name, Adder):
        return name
    return Adder(*_parse_name("parse_adder", "adder", name, ADDER_KINDS, ("loa", "truncate")))


# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnergyEntry:
    """Power of one design relative to the exact design of the same width (``quantity``: what the figure is
    a ratio of; here always dynamic power per operation at equal frequency, so it is also the energy per
    operation ratio). ``estimate``: True when the figure is this module's estimate (``source`` then gives the
    derivation), False only for a figure taken from a publication (``source`` cites it)."""

    name: str
    relative: float
    quantity: str
    estimate: bool
    source: str


_MUL_REF = "exact 8 x 8 unsigned array/tree multiplier"
_ADD_WIDTH = 16  #: width of the accumulator adder the adder estimates refer to (an 8 x 8 product is 16 bits)
_OR_VS_FA = 0.1  #: assumed power of a 2-input OR gate relative to a full adder cell (estimate)
_DRUM_OVERHEAD = 0.25  #: assumed power of DRUM's two leading-one detectors, muxes and shifter, relative (estimate)
_MITCHELL_EST = 0.5  #: assumed relative power of an 8-bit Mitchell multiplier (estimate)


def _truncate_mul_entry(k: int, bits: int) -> EnergyEntry:
    rel = ((bits - k) / bits) ** 2
    return EnergyEntry(
        f"truncate-{k}",
        rel,
        f"power relative to the {_MUL_REF}",
        True,
        f"ESTIMATE, not a published figure: the partial-product array shrinks from bits x bits to "
        f"(bits-k) x (bits-k) AND gates / adder cells, so power ~ ((bits-k)/bits)**2 = "
        f"(({bits}-{k})/{bits})**2 = {rel:.4f}",
    )


def _drum_entry(k: int, bits: int) -> EnergyEntry:
    rel = min(1.0, (k / bits) ** 2 + _DRUM_OVERHEAD)
    return EnergyEntry(
        f"drum-{k}",
        rel,
        f"power relative to the {_MUL_REF}",
        True,
        f"ESTIMATE, not a published figure: DRUM's core is a k x k exact multiplier, (k/bits)**2 = "
        f"{(k / bits) ** 2:.4f} of the array, plus an assumed {_DRUM_OVERHEAD} for the two leading-one "
        f"detectors, operand muxes and the output barrel shifter (relatively large at 8 bits). "
        f"Hashemi, Bahar & Reda (ICCAD 2015) evaluate 16- and 32-bit designs; the task brief quotes "
        f"their power savings as 54-80 %, which could not be checked here (no per-k 8-bit figure "
        f"found in the searched corpora)",
    )


def _loa_entry(k: int, width: int = _ADD_WIDTH) -> EnergyEntry:
    k_eff = min(k, width)
    rel = (width - k_eff) / width + k_eff / width * _OR_VS_FA
    return EnergyEntry(
        f"loa-{k}",
        rel,
        f"power relative to an exact {width}-bit ripple-carry adder",
        True,
        f"ESTIMATE, not a published figure: k of the {width} full-adder cells become OR gates "
        f"(assumed {_OR_VS_FA} of a full adder each) plus one AND for the carry: "
        f"({width}-{k_eff})/{width} + {k_eff}/{width} x {_OR_VS_FA} = {rel:.4f}. Mahdiani et al. "
        f"(IEEE TCAS-I 57(4), 2010) report LOA savings for their designs; the figures were not "
        f"found in the searched corpora",
    )


def _truncate_add_entry(k: int, width: int = _ADD_WIDTH) -> EnergyEntry:
    k_eff = min(k, width)
    rel = (width - k_eff) / width
    return EnergyEntry(
        f"truncate-{k}",
        rel,
        f"power relative to an exact {width}-bit ripple-carry adder",
        True,
        f"ESTIMATE, not a published figure: the k low full-adder cells are removed, power ~ "
        f"({width}-{k_eff})/{width} = {rel:.4f}",
    )


#: Relative power of the multipliers (8 x 8) and adders (16-bit accumulator adder) in common use, by
#: ``"multiplier:<name>"`` / ``"adder:<name>"``. Every entry except the exact ones is an ESTIMATE (see its
#: ``source``): no per-design power figure for these classical designs (DRUM per k, Mitchell, operand truncation,
#: LOA, truncated adder) was found in the sources that could be searched (searched again for published figures;
#: none readable). EvoApprox8b's published 8-bit multipliers at a similar MRED are listed as comparison points in
#: ``ENERGY_SOURCES["evoapprox8b_comparison"]``; they are other circuits, so no entry here uses them.
ENERGY: dict[str, EnergyEntry] = {
    "multiplier:exact": EnergyEntry("exact", 1.0, f"power relative to the {_MUL_REF}", False, "definition (reference)"),
    "multiplier:truncate-2": _truncate_mul_entry(2, 8),
    "multiplier:truncate-4": _truncate_mul_entry(4, 8),
    "multiplier:drum-4": _drum_entry(4, 8),
    "multiplier:drum-6": _drum_entry(6, 8),
    "multiplier:mitchell": EnergyEntry(
        "mitchell",
        _MITCHELL_EST,
        f"power relative to the {_MUL_REF}",
        True,
        f"ESTIMATE, not a published figure: a logarithmic multiplier replaces the partial-product array with two "
        f"leading-one detectors, two normalizing shifters, one adder and an antilog shifter; assumed "
        f"{_MITCHELL_EST} of the exact 8 x 8 array. No published 8-bit Mitchell power figure was found in the "
        f"searched corpora (Jiang et al.'s surveys, e.g. Proc. IEEE 108(12) 2020, characterize 16-bit "
        f"logarithmic multipliers; not readable here)",
    ),
    "adder:exact": EnergyEntry(
        "exact", 1.0, f"power relative to an exact {_ADD_WIDTH}-bit ripple-carry adder", False, "definition (reference)"
    ),
    "adder:loa-4": _loa_entry(4),
    "adder:truncate-4": _truncate_add_entry(4),
}

#: The sources behind ``ENERGY`` (and what was found in each), for a report to print.
ENERGY_SOURCES: dict[str, str] = {
    "exact": "Definition: each design is compared with the exact design of the same width (ratio 1.0).",
    "evoapprox8b": (
        "V. Mrazek, R. Hrbacek, Z. Vasicek, L. Sekanina, 'EvoApprox8b: Library of approximate adders "
        "and multipliers for circuit design and benchmarking of approximation methods', DATE 2017, "
        "pp. 258-261, doi:10.23919/DATE.2017.7926993; data in github.com/ehw-fit/evoapprox8b "
        "(meta.json, multipliers_8/README.md, commit ad6bb81) and github.com/ehw-fit/evoapproxlib "
        "(meta.json, multiplers/8x8_unsigned/*/README.md, commit d321f7f). 45 nm PDK45 power: the exact "
        "8 x 8 reference mul8_CarrySaveArrayMultiplier_Using_RippleCarryAdder = EvoApproxLib mul8u_1JFF "
        "is 0.391 mW (area 709.6 um2) in meta.json; the Wallace tree "
        "mul8_WallaceTreeMultiplier_Using_CarrySelectAdder is 0.454 mW in meta.json (536.4 uW in the "
        "header of its C file, another synthesis run). Its approximate circuits are evolved designs, not "
        "truncation / DRUM / Mitchell: none of the 505 EvoApprox8b or 36 EvoApproxLib-lite 8 x 8 "
        "unsigned multipliers has the MAE / WCE / EP of truncate-1..4, Mitchell or DRUM-4..7 (checked "
        "against this module's exhaustive statistics), so no entry of ENERGY uses them. Their MRE "
        "appears to leave zero products out, as error_statistics does (the constant-0 mul8u_E9R has "
        "MRE 100.00 % with EP 99.22 %)."
    ),
    "evoapprox8b_comparison": (
        "Comparison points only (other circuits, not the designs of ENERGY): published "
        "EvoApprox 8 x 8 unsigned multipliers at about the MRED of this module's designs, "
        "power relative to the 0.391 mW exact reference (45 nm PDK45, meta.json of the two "
        "repositories above). Near DRUM-6 (MRED 1.30 %): mul8_228 MRE 1.25 %, 0.318 mW = "
        "0.813 (lowest power of EvoApprox8b at MRE <= 1.30 %); mul8u_2AC MRE 1.25 %, 0.311 mW "
        "= 0.795 (EvoApproxLib). Near Mitchell (MRED 3.79 %): mul8_063 MRE 3.58 %, 0.232 mW = "
        "0.593 (lowest at MRE <= 3.79 %); mul8_324 MRE 3.81 %, 0.224 mW = 0.573; "
        "mul8u_1CMB MRE 4.05 %, 0.237 mW = 0.606 (EvoApproxLib). Near DRUM-4 (MRED 5.89 %): "
        "mul8_258 MRE 5.51 %, 0.183 mW = 0.468 (lowest at MRE <= 5.89 %); mul8_022 MRE "
        "5.88 %, 0.188 mW = 0.481; mul8u_12N4 MRE 4.20 %, 0.142 mW = 0.363 (EvoApproxLib, "
        "lowest there at MRE <= 5.89 %)."
    ),
    "drum": (
        "S. Hashemi, R. I. Bahar, S. Reda, 'DRUM: A Dynamic Range Unbiased Multiplier for Approximate "
        "Applications', ICCAD 2015, pp. 418-425 (16- and 32-bit designs). Per-k power figures were not "
        "found in the searched corpora; the task brief's 54-80 % power savings is not verified here. "
        "ENERGY's drum entries are estimates (see each source)."
    ),
    "mitchell": (
        "J. N. Mitchell, 'Computer multiplication and division using binary logarithms', IRE Trans. "
        "Electronic Computers EC-11(4), 1962 (the algorithm; no power figure). No Mitchell power figure "
        "relative to an exact multiplier of the same width was readable in the searched corpora (Liu, "
        "Lombardi et al., TCAS-I 65(9) 2018 and the Jiang et al. surveys not readable; D. J. McLaren, "
        "'Improved Mitchell-based logarithmic multiplier for low-power DSP applications' (venue and year "
        "not in the stored copy), gives in its abstract a 71 % power saving 'for larger input widths' for "
        "its improved design, not Mitchell's, width not stated there, so not used). ENERGY's entry is an "
        "estimate."
    ),
    "loa": (
        "H. R. Mahdiani, A. Ahmadi, S. M. Fakhraie, C. Lucas, 'Bio-inspired imprecise computational blocks "
        "for efficient VLSI implementation of soft-computing applications', IEEE TCAS-I 57(4), 2010 (the "
        "design). Its power figures were not found in the searched corpora; ENERGY's entry is an estimate."
    ),
    "survey": (
        "H. Jiang, C. Liu, L. Liu, F. Lombardi, J. Han, 'A review, classification and comparative "
        "evaluation of approximate arithmetic circuits', ACM JETC 13(4), 2017; H. Jiang et al., "
        "'Approximate arithmetic circuits: a survey, characterization and recent applications', Proc. "
        "IEEE 108(12), 2020. Both characterize power of DRUM, logarithmic and truncated multipliers "
        "(16-bit) and LOA; their tables were not readable in the searched corpora."
    ),
    "truncation": (
        "No published power of operand truncation (k LSBs of each operand cleared) was found: no "
        "EvoApprox entry matches it (see evoapprox8b). M. J. Schulte, J. E. Stine, J. G. Jansen, "
        "'Reduced power dissipation through truncated multiplication' (abstract; stored copy at "
        "lanxicy.com/read/bccac7cf2ab500aac4cb7a89.html, venue not shown), report 29-40 % less power "
        "for 16- and 32-bit multipliers, but for product-column truncation with carry correction, a "
        "different design, so not used. ENERGY's truncate entries are estimates."
    ),
    "estimates": (
        "Estimates in ENERGY: truncate-k multiplier ((bits-k)/bits)**2 (partial products kept); drum-k "
        f"(k/bits)**2 + {_DRUM_OVERHEAD} (core + assumed overhead); mitchell {_MITCHELL_EST} (assumed); "
        f"loa-k ({_ADD_WIDTH}-k)/{_ADD_WIDTH} + k/{_ADD_WIDTH} x {_OR_VS_FA} (OR gate assumed "
        f"{_OR_VS_FA} of a full adder); truncate-k adder ({_ADD_WIDTH}-k)/{_ADD_WIDTH}."
    ),
}


def relative_energy(name: str, bits: int = 8, kind: str = "multiplier") -> EnergyEntry:
    """The ``EnergyEntry`` of the multiplier (``kind="multiplier"``, ``bits`` x ``bits``) or adder
    (``kind="adder"``, a 16-bit accumulator adder) named ``name``: the table entry for 8-bit multipliers listed
    in ``ENERGY``, else the same estimate formula at the given ``k`` and ``bits`` (marked ``estimate``).
    ``.relative`` is the ratio to the exact design."""
    fn = "relative_energy"
    if kind == "multiplier":
        m = parse_multiplier(name, bits)
        if bits == 8 and f"multiplier:{m.name}" in ENERGY:
            return ENERGY[f"multiplier:{m.name}"]
        if m.kind == "exact":
            return EnergyEntry(
                "exact", 1.0, f"power relative to the exact {bits} x {bits} multiplier", False, "definition (reference)"
            )
        if m.kind == "truncate":
            return _truncate_mul_entry(cast(int, m.k), bits)
        if m.kind == "drum":
            return _drum_entry(cast(int, m.k), bits)
        return EnergyEntry(
            "mitchell",
            _MITCHELL_EST,
            f"power relative to the exact {bits} x {bits} multiplier",
            True,
            ENERGY["multiplier:mitchell"].source + f" (the 8-bit estimate reused at {bits} bits)",
        )
    if kind == "adder":
        ad = parse_adder(name)
        if f"adder:{ad.name}" in ENERGY:
            return ENERGY[f"adder:{ad.name}"]
        k = cast(int, ad.k)  # parse_adder gives k to every approximate adder
        return _loa_entry(k) if ad.kind == "loa" else _truncate_add_entry(k)
    raise InputError(f"{fn}: kind = {short_repr(kind)} is not allowed; allowed: 'multiplier', 'adder'")
