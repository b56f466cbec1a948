"""
Shared helpers for the controller's tests: a feeder that drives it tick by tick in synthetic time.

Every input and tick carries the ROS time the test chooses; :class:`Feeder` sends a constant,
healthy robot state unless a test changes it.
"""

import math

from humanoid_rl_ros.core.controller import Controller, ControllerConfig, ControllerState
import numpy as np

DT = 0.005
UPRIGHT = (1.0, 0.0, 0.0, 0.0)


class Feeder:
    """Drives a controller tick by tick with a constant, healthy robot state."""

    def __init__(self, controller: Controller, seed: int = 0) -> None:
        """Create the feeder with a random standing-ish state."""
        rng = np.random.default_rng(seed)
        n = controller.contract.num_joints
        self.c = controller
        self.names = list(controller.joint_names)
        self.q = np.asarray(controller.contract.default_pos_rad) + 0.1 * rng.standard_normal(n)
        self.qd = 0.5 * rng.standard_normal(n)
        self.quat = UPRIGHT
        self.lin_vel = (0.1, 0.0, 0.0)
        self.t = 0.0
        self.joint_stamp_ns = None  # header stamps to send (None: unstamped messages)
        self.odom_stamp_ns = None

    def feed(self, odom: bool = True, joints: bool = True) -> None:
        """Publish joint state and odometry at the current time."""
        if joints:
            self.c.update_joint_state(self.names, self.q, self.qd, self.t,
                                      stamp_ns=self.joint_stamp_ns)
        if odom:
            self.c.update_odom(self.quat, self.lin_vel, [0.0, 0.0, 0.2], self.t,
                               stamp_ns=self.odom_stamp_ns)

    def tick(self, odom: bool = True, joints: bool = True) -> np.ndarray:
        """Advance one physics tick, feeding inputs first; return the effort."""
        self.t += DT
        self.feed(odom, joints)
        return self.c.step(self.t)


def walking(runtime, **config) -> Feeder:
    """Return a feeder whose controller (``config`` overrides, no stand ramp) walks."""
    c = Controller(runtime.contract, runtime.act, ControllerConfig(stand_ramp_s=0.0, **config))
    f = Feeder(c)
    f.feed()
    c.activate(f.t)
    assert c.request_walk(f.t)[0]
    f.tick()
    assert c.state is ControllerState.WALKING
    return f


def assert_bounded(c: Controller, effort: np.ndarray) -> None:
    """Assert that ``effort`` is finite and within the contract's effort limits."""
    assert effort is not None
    assert np.all(np.isfinite(effort))
    assert np.all(np.abs(effort) <= np.asarray(c.contract.effort_limit_nm))


def pd_effort(c: Controller, target: np.ndarray, q: np.ndarray, qd: np.ndarray) -> np.ndarray:
    """Return the hand-written PD effort ``kp (target - q) - kd qd``, clipped to the limits."""
    kp, kd = np.asarray(c.contract.kp_nm_per_rad), np.asarray(c.contract.kd_nms_per_rad)
    limit = np.asarray(c.contract.effort_limit_nm)
    return np.clip(kp * (target - q) - kd * qd, -limit, limit)


def tilted_about_x(angle_rad: float) -> tuple:
    """Return the quaternion (w, x, y, z) of a roll by ``angle_rad``."""
    return (math.cos(0.5 * angle_rad), math.sin(0.5 * angle_rad), 0.0, 0.0)


def ticks_until_not_walking(f: Feeder, limit: int, **tick) -> int:
    """Tick (with ``tick`` arguments) until the controller leaves walking; return the count."""
    for n in range(1, limit + 1):
        assert_bounded(f.c, f.tick(**tick))
        if f.c.state is not ControllerState.WALKING:
            return n
    raise AssertionError(f'still walking after {limit} ticks')
