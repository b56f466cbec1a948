"""
Integration kits: configuration generated from the policy contract and the robot (no rclpy).

* :mod:`~humanoid_rl_ros.integration.nav2_params`: Nav2 parameters (speed and acceleration
  limits from the contract's command ranges, footprint from the robot model);
* :mod:`~humanoid_rl_ros.integration.ros2_control`: the ``<ros2_control>`` URDF variant and the
  controller_manager configuration (joints in policy order);
* :mod:`~humanoid_rl_ros.integration.pure_pursuit`: a small holonomic waypoint follower.
"""
