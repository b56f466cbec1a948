"""
Launch the policy node alone, for Isaac Sim or a robot (ros2_control).

Examples::

    ros2 launch humanoid_rl_ros walk.launch.py preset:=isaac_sim use_sim_time:=true
    ros2 launch humanoid_rl_ros walk.launch.py preset:=ros2_control policy:=/path/my_policy.yaml
    ros2 launch humanoid_rl_ros walk.launch.py cmd_vel_topic:=/nav/cmd_vel cmd_vel_type:=stamped
    ros2 launch humanoid_rl_ros walk.launch.py preset:=ros2_control realtime_priority:=50

The node, its parameter file and its remappings come from
:func:`humanoid_rl_ros.ros.launch_config.policy_node_spec`, which the executable test also uses.
"""

from humanoid_rl_ros.ros import launch_config
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def _launch_setup(context):
    share = FindPackageShare(launch_config.PACKAGE).perform(context)
    preset = LaunchConfiguration('preset').perform(context)
    if preset not in launch_config.PRESETS:
        raise RuntimeError(f'unknown preset {preset!r}; choose one of '
                           f'{", ".join(launch_config.PRESETS)}')
    spec = launch_config.policy_node_spec(
        share, preset=preset,
        params_file=LaunchConfiguration('params_file').perform(context),
        use_sim_time=launch_config.parse_bool(
            LaunchConfiguration('use_sim_time').perform(context)),
        **launch_config.policy_argument_values(
            lambda name: LaunchConfiguration(name).perform(context)))
    return [Node(package=spec.package, executable=spec.executable, name=spec.name,
                 output='screen', emulate_tty=True, prefix=spec.launch_prefix(),
                 parameters=spec.launch_parameters(),
                 remappings=spec.remappings)]


def generate_launch_description() -> LaunchDescription:
    """Declare the arguments and start the policy node."""
    return LaunchDescription([
        DeclareLaunchArgument(
            'preset', default_value='isaac_sim',
            choices=list(launch_config.PRESETS),
            description='Parameter preset: isaac_sim (JointState efforts on /joint_command), '
                        'ros2_control (Float64MultiArray on /effort_controller/commands) or '
                        'mujoco_sim (the package sim node).'),
        DeclareLaunchArgument(
            'params_file',
            default_value=PathJoinSubstitution([
                FindPackageShare(launch_config.PACKAGE), 'config',
                ['policy_', LaunchConfiguration('preset'), '.yaml']]),
            description='Policy node parameter file; defaults to the installed '
                        'config/policy_<preset>.yaml.'),
        DeclareLaunchArgument(
            'use_sim_time', default_value='false', choices=['true', 'false'],
            description='Run on /clock (true for Isaac Sim and the MuJoCo sim node).'),
        *[DeclareLaunchArgument(arg.name, default_value=arg.default,
                                description=arg.description,
                                choices=list(arg.choices) if arg.choices else None)
          for arg in launch_config.POLICY_ARGUMENTS],
        OpaqueFunction(function=_launch_setup),
    ])
