"""
The closed-loop walking demo: the sim node and the policy node driven like Nav2 would.

:mod:`.scenario` holds the command script, metrics and plots (pure); :mod:`.runner` starts the
two nodes, drives them over ROS 2 and writes the results.
"""
