"""
Joint position targets for drives that run their own PD (the node's ``output_mode: position``).

The policy contract's position mode (``control.position_mode``): a drive that runs the PD law
itself, with the contract's ``kp``, ``kd`` and effort limits and a zero velocity target,
receives ``q_target`` every policy step. While walking that is the policy's target. In the other
states the controller computes efforts (the stand ramp's PD, damping); :func:`pd_equivalent_target`
turns such an effort into the target for which the contract's PD law gives it at the measured
state, so the drive applies the same effort at that instant. No ROS here.
"""

import numpy as np


def pd_equivalent_target(effort_nm: np.ndarray, q_rad: np.ndarray, qd_rad_s: np.ndarray,
                         kp_nm_per_rad: np.ndarray, kd_nms_per_rad: np.ndarray) -> np.ndarray:
    """
    Return ``q_target`` [rad] with ``kp * (q_target - q) - kd * qd == effort`` (unclipped PD).

    A joint with ``kp == 0`` gets ``q`` (its drive has no position term to set). For a damping
    effort ``-kd * qd`` the target is the measured position.
    """
    kp = np.asarray(kp_nm_per_rad, dtype=np.float64)
    q = np.asarray(q_rad, dtype=np.float64)
    pull = np.asarray(effort_nm, dtype=np.float64) + np.asarray(kd_nms_per_rad) * qd_rad_s
    safe_kp = np.where(kp > 0.0, kp, 1.0)
    return np.where(kp > 0.0, q + pull / safe_kp, q)
