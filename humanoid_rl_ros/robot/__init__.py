"""
The robot: its config (``robot.yaml``), its description (URDF or MJCF) and its MuJoCo model.

:mod:`.description` loads and checks a robot; :mod:`.mujoco_model` builds the simulation model
that training, the sim node and the evaluator share.
"""
