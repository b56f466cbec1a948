"""
Robustness suite of an exported policy: what real robots differ in, in CPU MuJoCo.

The policy runs as in :mod:`training.evaluate`, through the deployment code path (the policy
node's :class:`humanoid_rl_ros.core.controller.Controller` with the onnxruntime policy, on
:class:`humanoid_rl_ros.sim.mujoco_sim.MujocoRobotSim`), under named scenarios: pushes at random
times and directions, ground friction, payload, motor strength, latency, sensor noise, rotor
inertia, PD gain mismatch, slopes, rough ground, standing still and a wrong base velocity
estimate. Modules:

* :mod:`training.robustness.episode`: the episode loop shared with :mod:`training.evaluate`,
  with the loop perturbations (latency, noise, velocity estimate, motor strength, PD gains);
* :mod:`training.robustness.metrics`: the metric functions shared with the evaluator;
* :mod:`training.robustness.perturbations`: changes to the MuJoCo model (friction, payload,
  rotor inertia, terrain) and push schedules;
* :mod:`training.robustness.scenarios`: the typed scenario entries, the targets and the
  ``full`` and ``ci`` suites;
* :mod:`training.robustness.runner`: runs a suite over worker processes;
* :mod:`training.robustness.report` and :mod:`training.robustness.plots`: JSON and figures;
* :mod:`training.robustness.cli`: ``python -m training.robustness``;
* :mod:`training.robustness.time_to_policy`: every snapshot of a training run through a suite,
  and the earliest that meets every target.

This file imports nothing, so that :mod:`training.evaluate` can use the episode loop without
loading the suite.
"""
