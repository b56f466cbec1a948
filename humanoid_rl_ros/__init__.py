"""humanoid_rl_ros: train humanoid walking policies on the GPU and run them under ROS 2."""
