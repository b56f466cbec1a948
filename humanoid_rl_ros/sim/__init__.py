"""
The CPU MuJoCo stand-in for Isaac Sim or the robot (no ROS imports).

:mod:`.mujoco_sim` steps the robot's model; :mod:`.sim_logic` checks effort commands, holds them
and gates lock-step stepping. The sim node in :mod:`humanoid_rl_ros.ros.sim_node` wires them.
"""
