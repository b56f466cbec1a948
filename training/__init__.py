"""Offline training half of humanoid_rl_ros: vectorized envs, PPO, runner and ONNX export."""
