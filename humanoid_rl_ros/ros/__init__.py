"""
ROS 2 wiring: the policy node, the MuJoCo sim node, message conversion and launch helpers.

Files here wire topics, parameters, timers and lifecycle states; what they compute lives in
:mod:`humanoid_rl_ros.core` (the policy) and :mod:`humanoid_rl_ros.sim` (the stand-in simulator).
"""
