r"""
Nav2 drives the walking humanoid: Nav2's navigation servers plus the sim or the robot's walker.

Examples::

    ros2 launch humanoid_rl_ros nav2_walk.launch.py                      # MuJoCo sim + Nav2
    ros2 launch humanoid_rl_ros nav2_walk.launch.py target:=robot preset:=ros2_control
    ros2 launch humanoid_rl_ros nav2_walk.launch.py target:=robot preset:=isaac_sim \\
        use_sim_time:=true

What it starts:

* ``target:=sim``: the package's ``sim_walk.launch.py`` (MuJoCo sim node, policy node,
  robot_state_publisher, all on the sim's ``/clock``), with the sim node publishing TF
  ``odom -> <base link>`` (``publish_tf``).
* ``target:=robot``: the package's ``walk.launch.py`` (the policy node alone) with ``preset``;
  the robot (or Isaac Sim) provides ``/joint_states``, ``/odom``, TF ``odom -> <base link>`` and
  robot_state_publisher.
* Nav2: ``nav2_bringup``'s ``navigation_launch.py`` with ``config/nav2_params.yaml`` (generated
  from the policy contract), where ``nav2_bringup`` is installed; otherwise a message says so
  and only the walker starts.
* ``map_to_odom``: a static identity ``map -> odom`` transform, for runs without localization
  (default: on for the sim, off for a robot, whose localization publishes it).

The policy node's ``cmd_vel`` type follows Nav2's ``enable_stamped_cmd_vel`` in the Nav2
parameter file unless ``cmd_vel_stamped`` is given. See docs/NAV2.md.
"""

from pathlib import Path

from humanoid_rl_ros.integration.nav2_params import stamped_cmd_vel
from humanoid_rl_ros.ros import launch_config
from launch import LaunchDescription
from launch.actions import (DeclareLaunchArgument, GroupAction, IncludeLaunchDescription, LogInfo,
                            OpaqueFunction)
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node, SetParameter
from launch_ros.substitutions import FindPackageShare
import yaml

TARGETS = ('sim', 'robot')


def _nav2_bringup_share():
    """Return nav2_bringup's share folder, or None where Nav2 is not installed."""
    from ament_index_python.packages import get_package_share_directory, PackageNotFoundError
    try:
        return Path(get_package_share_directory('nav2_bringup'))
    except PackageNotFoundError:
        return None


def _launch_setup(context):
    def arg(name: str) -> str:
        return LaunchConfiguration(name).perform(context)

    target = arg('target')
    if target not in TARGETS:
        raise RuntimeError(f'unknown target {target!r}; choose one of {", ".join(TARGETS)}')
    share = Path(FindPackageShare(launch_config.PACKAGE).perform(context))
    nav2_params_file = arg('nav2_params_file')
    use_sim_time = arg('use_sim_time') or ('true' if target == 'sim' else 'false')
    map_to_odom = arg('map_to_odom') or ('true' if target == 'sim' else 'false')
    walker_args = {name.name: arg(name.name) for name in launch_config.POLICY_ARGUMENTS}
    if walker_args['cmd_vel_stamped'] == '':
        params = yaml.safe_load(Path(nav2_params_file).read_text()) or {}
        walker_args['cmd_vel_stamped'] = 'true' if stamped_cmd_vel(params) else 'false'
    walker_args['params_file'] = arg('params_file')

    actions = [SetParameter(name='use_sim_time', value=launch_config.parse_bool(use_sim_time))]
    if target == 'sim':
        sim_walk = IncludeLaunchDescription(
            PythonLaunchDescriptionSource(str(share / 'launch' / 'sim_walk.launch.py')),
            launch_arguments=walker_args.items())
        # The sim node publishes odom -> base link on /tf for Nav2 (scoped to this group).
        actions.append(GroupAction([SetParameter(name='publish_tf', value=True), sim_walk]))
    else:
        walker_args.update(preset=arg('preset'), use_sim_time=use_sim_time)
        actions.append(IncludeLaunchDescription(
            PythonLaunchDescriptionSource(str(share / 'launch' / 'walk.launch.py')),
            launch_arguments=walker_args.items()))

    if launch_config.parse_bool(map_to_odom):
        actions.append(Node(
            package='tf2_ros', executable='static_transform_publisher',
            name='map_to_odom', output='screen',
            arguments=['--frame-id', 'map', '--child-frame-id', 'odom']))

    bringup = _nav2_bringup_share()
    if bringup is None:
        actions.append(LogInfo(msg='nav2_bringup is not installed: starting the walker only '
                                   '(install ros-$ROS_DISTRO-navigation2 ros-$ROS_DISTRO-nav2-'
                                   'bringup for Nav2).'))
    else:
        actions.append(IncludeLaunchDescription(
            PythonLaunchDescriptionSource(str(bringup / 'launch' / 'navigation_launch.py')),
            launch_arguments={'params_file': nav2_params_file, 'use_sim_time': use_sim_time,
                              'autostart': 'true', 'use_composition': 'False'}.items()))
    return actions


def generate_launch_description() -> LaunchDescription:
    """Declare the arguments and start Nav2 with the sim or the robot's walker."""
    share = FindPackageShare(launch_config.PACKAGE)
    return LaunchDescription([
        DeclareLaunchArgument(
            'target', default_value='sim', choices=list(TARGETS),
            description='sim: the MuJoCo sim node + policy node (sim_walk.launch.py); robot: '
                        'the policy node alone (walk.launch.py) for a robot or Isaac Sim.'),
        DeclareLaunchArgument(
            'preset', default_value='ros2_control', choices=list(launch_config.PRESETS),
            description='Policy node preset for target:=robot (see walk.launch.py).'),
        DeclareLaunchArgument(
            'params_file', default_value='',
            description='Policy node parameter file; empty: the preset of the walker launch.'),
        DeclareLaunchArgument(
            'nav2_params_file',
            default_value=PathJoinSubstitution([share, 'config', 'nav2_params.yaml']),
            description='Nav2 parameter file (default: config/nav2_params.yaml, generated '
                        'from the policy contract).'),
        DeclareLaunchArgument(
            'use_sim_time', default_value='', choices=['', 'true', 'false'],
            description='Run on /clock; empty: true for target:=sim, false for a robot.'),
        DeclareLaunchArgument(
            'map_to_odom', default_value='', choices=['', 'true', 'false'],
            description='Publish a static identity map -> odom (no localization); empty: '
                        'true for target:=sim, false for a robot.'),
        *[DeclareLaunchArgument(arg.name, default_value=arg.default,
                                description=arg.description,
                                choices=list(arg.choices) if arg.choices else None)
          for arg in launch_config.POLICY_ARGUMENTS],
        OpaqueFunction(function=_launch_setup),
    ])
