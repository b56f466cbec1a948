"""
Sim-to-sim in a second physics engine: the exported policy through its contract in PyBullet.

:class:`~training.sim2sim.pybullet_sim.PyBulletRobotSim` is the PyBullet counterpart of
:class:`humanoid_rl_ros.sim.mujoco_sim.MujocoRobotSim`; :mod:`training.sim2sim.run` drives
the policy node's controller on it with the command cases and metrics of
:mod:`training.evaluate`. Entry point: ``python -m training.sim2sim <contract.yaml>``.
"""
