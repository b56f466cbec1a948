"""
The deployment core: pure logic shared by the policy node, the evaluator and training.

No rclpy and no simulator here: the policy contract, the observation/action/PD math, the
controller state machine, the onnxruntime policy session, ROS-time stamps and provenance.
"""
