"""Technology scaling of area and energy between CMOS nodes (130 nm to 7 nm).

Figures from A. Stillmaker and B. Baas, "Scaling equations for the accurate prediction of CMOS device
performance from 180 nm to 7 nm", Integration 58 (2017) 74-81: the area scaling factors of their
Table (relative to 130 nm) and their fitted dynamic-energy polynomials a*Vdd^2 + b*Vdd + c per node.
Nodes between the tabulated ones are interpolated in log(node). Everything here works elementwise on
numpy arrays.
"""

from __future__ import annotations

import numpy as np

from ..errors import SpecError

NODES_NM = np.array([130, 90, 65, 45, 32, 20, 16, 14, 10, 7], dtype=float)
# area relative to 130 nm (Stillmaker & Baas 2017)
AREA_REL_130 = np.array([1, 0.44, 0.23, 0.16, 0.072, 0.033, 0.03, 0.027, 0.016, 0.0092])
# dynamic energy ~ a*V^2 + b*V + c, per node (Stillmaker & Baas 2017)
ENERGY_POLY = np.array(
    [
        [7.171, -6.709, 2.904],
        [4.762, -4.781, 2.092],
        [3.755, -4.398, 1.975],
        [1.103, -0.362, 0.2767],
        [0.9559, -0.7823, 0.471],
        [0.373, -0.1582, 0.04104],
        [0.2958, -0.1241, 0.03024],
        [0.2363, -0.09675, 0.02239],
        [0.2068, -0.09311, 0.02375],
        [0.1776, -0.09097, 0.02447],
    ]
)
REFERENCE_NODE_NM = 22.0
REFERENCE_SUPPLY_V = 0.8


def _interp_log(node_nm, values, nodes=NODES_NM) -> np.ndarray:
    """``values`` tabulated at ``nodes`` (descending), interpolated in log(node)."""
    x = np.log(np.asarray(node_nm, dtype=float))
    return np.interp(x, np.log(nodes[::-1]), np.asarray(values, dtype=float)[::-1])


def check_node(node_nm) -> None:
    """Return None if every node in ``node_nm`` (nm, scalar or array) is within the scaling data (7 to 130 nm);
    else raise a ``SpecError`` naming the first one outside."""
    n = np.asarray(node_nm, dtype=float)
    if np.any(n < NODES_NM[-1]) or np.any(n > NODES_NM[0]):
        bad = n[(n < NODES_NM[-1]) | (n > NODES_NM[0])].ravel()[0]
        raise SpecError(
            f"technology.node_nm = {bad:g}: the cost model's technology scaling data cover 7 nm to 130 nm; "
            "give a node in that range"
        )


def area_factor(node_nm) -> np.ndarray:
    """Logic/SRAM area at ``node_nm`` relative to the 22 nm reference."""
    log_area = _interp_log(node_nm, np.log(AREA_REL_130))
    return np.exp(log_area - _interp_log(REFERENCE_NODE_NM, np.log(AREA_REL_130)))


def _energy_at(node_nm, supply_v) -> np.ndarray:
    coeffs = np.stack([_interp_log(node_nm, ENERGY_POLY[:, k]) for k in range(3)])
    v = np.asarray(supply_v, dtype=float)
    return coeffs[0] * v**2 + coeffs[1] * v + coeffs[2]


def energy_factor(node_nm, supply_v) -> np.ndarray:
    """Dynamic energy of digital logic at (node, supply) relative to 22 nm and 0.8 V."""
    return _energy_at(node_nm, supply_v) / _energy_at(REFERENCE_NODE_NM, REFERENCE_SUPPLY_V)


# Low-power (LSTP) transistors per node, the PTM "LP" models DNN+NeuroSim V1.3 takes its technology from
# (NeuroSim/Technology.cpp, the LSTP branch of each node): nominal supply Vdd (V), gate capacitance per
# width incl. fringe and overlap (1.2 x C_ideal + C_fringe, F/m; Technology.cpp adds C_overlap = 0.2 C_ideal)
# and NMOS on-current (uA/um). 14, 10 and 7 nm are FinFET models without a fringe term.
NOMINAL_SUPPLY_V = np.array([1.3, 1.2, 1.1, 1.0, 0.9, 0.85, 0.8, 0.75, 0.7])
_LP_NODES_NM = np.array([130, 90, 65, 45, 32, 22, 14, 10, 7], dtype=float)
_LP_GATE_CAP_F_PER_M = np.array(
    [
        1.2 * 1.8574e-9 + 9.530642e-10,
        1.2 * 1.5413e-9 + 9.601334e-10,
        1.2 * 1.1926e-9 + 9.62148e-10,
        1.2 * 8.930709e-10 + 8.849901e-10,
        1.2 * 8.375279e-10 + 6.856677e-10,
        1.2 * 5.245e-10 + 8.004e-10,
        1.2 * 1.0572e-9,
        1.2 * 9.418984e-10,
        1.2 * 8.49489e-10,
    ]
)
_LP_ION_UA_PER_UM = np.array([300.70, 346.30, 400.00, 500.20, 600.20, 791.90, 893.0, 862.0, 822.0])
# intrinsic gate delay C V / I of each node's LP transistor (s): a gate driving gates of its own size
# (uA/um is A/m, so F/m x V / (A/m) is seconds)
_LOG_LP_TAU_S = np.log(_LP_GATE_CAP_F_PER_M * NOMINAL_SUPPLY_V / _LP_ION_UA_PER_UM)
_LOG_LP_TAU_REFERENCE = float(_interp_log(REFERENCE_NODE_NM, _LOG_LP_TAU_S, _LP_NODES_NM))


def nominal_supply_v(node_nm) -> np.ndarray:
    """The nominal supply (V) of the low-power transistors at ``node_nm`` (PTM LP / ITRS LSTP, as in
    NeuroSim): 1.3 V at 130 nm, 1.0 V at 45 nm, 0.85 V at 22 nm, 0.7 V at 7 nm; interpolated in log(node).
    ``technology.supply_v: null`` means this value."""
    return _interp_log(node_nm, NOMINAL_SUPPLY_V, _LP_NODES_NM)


def delay_factor(node_nm) -> np.ndarray:
    """Gate delay at ``node_nm`` relative to 22 nm: the intrinsic delay C V / I_on of the node's LP transistor
    (PTM LP models as in NeuroSim's Technology.cpp): x2.55 at 45 nm, x0.57 at 7 nm; interpolated in
    log(node). Wider transistors drive proportionally larger loads, so a circuit sized in units of F keeps
    this ratio."""
    return np.exp(_interp_log(node_nm, _LOG_LP_TAU_S, _LP_NODES_NM) - _LOG_LP_TAU_REFERENCE)
