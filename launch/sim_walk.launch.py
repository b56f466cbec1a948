"""
Launch the MuJoCo sim node, the policy node and robot_state_publisher: walking with no robot.

Example::

    ros2 launch humanoid_rl_ros sim_walk.launch.py policy:=/path/my_policy.yaml

The sim node owns ``/clock`` (lock-step by default, see config/sim_node.yaml); the policy node
runs on sim time with config/policy_mujoco_sim.yaml. Nodes, parameter files and remappings come
from :func:`humanoid_rl_ros.ros.launch_config.sim_walk_specs`, which the executable test also uses.
"""

from pathlib import Path

from humanoid_rl_ros.ros import launch_config
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def _launch_setup(context):
    share = FindPackageShare(launch_config.PACKAGE).perform(context)
    specs = launch_config.sim_walk_specs(
        share,
        params_file=LaunchConfiguration('params_file').perform(context),
        sim_params_file=LaunchConfiguration('sim_params_file').perform(context),
        **launch_config.policy_argument_values(
            lambda name: LaunchConfiguration(name).perform(context)))
    actions = [Node(package=spec.package, executable=spec.executable, name=spec.name,
                    output='screen', emulate_tty=True, prefix=spec.launch_prefix(),
                    parameters=spec.launch_parameters(),
                    remappings=spec.remappings) for spec in specs]
    urdf = Path(launch_config.robot_description_path(share)).read_text()
    actions.append(Node(
        package='robot_state_publisher', executable='robot_state_publisher',
        name='robot_state_publisher', output='screen',
        parameters=[{'robot_description': urdf, 'use_sim_time': True}],
        condition=IfCondition(LaunchConfiguration('robot_state_publisher'))))
    return actions


def generate_launch_description() -> LaunchDescription:
    """Declare the arguments and start the sim, the policy node and robot_state_publisher."""
    share = FindPackageShare(launch_config.PACKAGE)
    return LaunchDescription([
        DeclareLaunchArgument(
            'params_file',
            default_value=PathJoinSubstitution([share, 'config', 'policy_mujoco_sim.yaml']),
            description='Policy node parameter file (default: installed mujoco_sim preset).'),
        DeclareLaunchArgument(
            'sim_params_file',
            default_value=PathJoinSubstitution([share, 'config',
                                                launch_config.SIM_PARAMS_FILE]),
            description='Sim node parameter file (default: installed config/sim_node.yaml).'),
        *[DeclareLaunchArgument(arg.name, default_value=arg.default,
                                description=arg.description,
                                choices=list(arg.choices) if arg.choices else None)
          for arg in launch_config.POLICY_ARGUMENTS],
        DeclareLaunchArgument(
            'robot_state_publisher', default_value='true', choices=['true', 'false'],
            description='Also start robot_state_publisher with the robot URDF (on sim time).'),
        OpaqueFunction(function=_launch_setup),
    ])
