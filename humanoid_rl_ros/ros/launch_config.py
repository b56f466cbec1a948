"""
What the launch files start, as plain data: one place for executables, parameter files and remaps.

``launch/walk.launch.py`` and ``launch/sim_walk.launch.py`` turn these :class:`NodeSpec` into
``launch_ros.actions.Node`` actions; ``test/test_launch_executables.py`` turns the very same
specs into ``--ros-args`` command lines (:meth:`NodeSpec.ros_args`) for the installed
executables, because ``launch_ros`` is not installable everywhere. No ROS imports here.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

PACKAGE = 'humanoid_rl_ros'
"""The ROS package name (``FindPackageShare`` argument)."""

DEFAULT_POLICY = 'humanoid_walk'
"""Policy name looked up as ``models/<name>.yaml`` (the name training exports by default)."""

PRESETS: Dict[str, str] = {
    'isaac_sim': 'policy_isaac_sim.yaml',
    'ros2_control': 'policy_ros2_control.yaml',
    'mujoco_sim': 'policy_mujoco_sim.yaml',
}
"""Preset name -> policy node parameter file under ``config/``."""

PRESET_REMAPPINGS: Dict[str, List[Tuple[str, str]]] = {
    'isaac_sim': [],
    # forward_command_controller listens on /<controller name>/commands; the controller is
    # assumed to be named effort_controller (remap joint_command yourself for another name).
    'ros2_control': [('joint_command', '/effort_controller/commands')],
    'mujoco_sim': [],
}
"""Preset name -> extra topic remappings of the policy node (from, to)."""

POLICY_NODE_EXECUTABLE = 'policy_node'
POLICY_NODE_NAME = 'policy_node'
SIM_NODE_EXECUTABLE = 'sim_node'
SIM_NODE_NAME = 'sim_node'
SIM_PARAMS_FILE = 'sim_node.yaml'
ROBOT_URDF = ('models', 'robots', 'kestrel', 'kestrel.urdf')
"""URDF path parts under the package share folder (robot_state_publisher's description)."""

ParamValue = Union[str, bool, int, float]


def parse_bool(text: Union[str, bool]) -> bool:
    """Return a launch argument string ('true'/'false'/'1'/'0', any case) as a bool."""
    if isinstance(text, bool):
        return text
    lowered = str(text).strip().lower()
    if lowered in ('true', '1', 'yes', 'on'):
        return True
    if lowered in ('false', '0', 'no', 'off'):
        return False
    raise ValueError(f'expected true or false, got {text!r}')


def parse_optional_bool(text: str) -> Optional[bool]:
    """Return ``None`` for an empty launch argument, else :func:`parse_bool` of it."""
    return None if text == '' else parse_bool(text)


def parse_priority(text: Union[str, int]) -> int:
    """Return a ``realtime_priority`` argument as an int in [0, 99]; raise ``ValueError``."""
    try:
        priority = int(str(text).strip())
    except ValueError:
        raise ValueError(f'realtime_priority must be an integer 0-99, got {text!r}') from None
    if not 0 <= priority <= 99:
        raise ValueError(f'realtime_priority must be 0 (normal scheduling) or a SCHED_FIFO '
                         f'priority 1-99, got {priority}')
    return priority


@dataclass(frozen=True)
class LaunchArgument:
    """A launch argument as the launch files declare it (``DeclareLaunchArgument``)."""

    name: str
    default: str
    description: str
    choices: Optional[Tuple[str, ...]] = None
    """Accepted values (``None``: any)."""
    parse: Callable[[str], Any] = str
    """Turns the argument's text into the value the node spec builders take."""


POLICY_ARGUMENTS: Tuple[LaunchArgument, ...] = (
    LaunchArgument(
        'policy', '',
        'Policy contract path (<policy>.yaml beside <policy>.onnx) or a name under the '
        'installed models/ folder; empty keeps the value in the parameter file (default '
        f'{DEFAULT_POLICY}).'),
    LaunchArgument(
        'cmd_vel_topic', 'cmd_vel',
        'Velocity command topic the policy node follows (e.g. the Nav2 controller output).'),
    LaunchArgument(
        'cmd_vel_type', '',
        'Message type of cmd_vel: auto (the type its publishers send: TwistStamped from Nav2 '
        'Kilted+, Twist from Nav2 Jazzy/Humble and teleop), twist or stamped; empty keeps the '
        'value in the parameter file (default auto).', ('', 'auto', 'twist', 'stamped')),
    LaunchArgument(
        'cmd_vel_stamped', '',
        'Older form of cmd_vel_type: true is cmd_vel_type stamped; false leaves the choice to '
        'cmd_vel_type; empty keeps the value in the parameter file.', ('', 'true', 'false'),
        parse_optional_bool),
    LaunchArgument(
        'realtime_priority', '0',
        'SCHED_FIFO priority (1-99) of the whole policy node process, its DDS threads '
        'included: it is started under `chrt --fifo N` (needs CAP_SYS_NICE or an rtprio '
        'limit; without, chrt exits naming the refusal). 0: normal scheduling. For 500 Hz on '
        'a small or busy machine (benchmarks/RESULTS.md).', parse=parse_priority),
)
"""The policy node's arguments, declared by both launch files."""


def policy_argument_values(value: Callable[[str], str]) -> Dict[str, Any]:
    """
    Return :data:`POLICY_ARGUMENTS` parsed, as keyword arguments of the node spec builders.

    ``value(name)`` returns an argument's text (in a launch file:
    ``LaunchConfiguration(name).perform(context)``); a malformed one raises ``ValueError``.
    """
    return {arg.name: arg.parse(value(arg.name)) for arg in POLICY_ARGUMENTS}


@dataclass
class NodeSpec:
    """One node as the launch files start it."""

    package: str
    """ROS package of the executable."""
    executable: str
    """Executable name (``lib/<package>/<executable>``)."""
    name: str
    """Node name (``__node`` remap); parameter files key on it or on ``/**``."""
    params_files: List[str] = field(default_factory=list)
    """Parameter YAML files, applied in order."""
    parameters: Dict[str, ParamValue] = field(default_factory=dict)
    """Parameter overrides applied after the files."""
    remappings: List[Tuple[str, str]] = field(default_factory=list)
    """Topic remappings (from, to)."""
    prefix: List[str] = field(default_factory=list)
    """Command the executable runs under (e.g. ``chrt --fifo 50``); empty: none."""

    def launch_prefix(self) -> Optional[str]:
        """Return the ``prefix=`` of a ``launch_ros`` Node (``None``: no prefix)."""
        return ' '.join(self.prefix) if self.prefix else None

    def launch_parameters(self) -> List[Union[str, Dict[str, ParamValue]]]:
        """Return the ``parameters=`` list of a ``launch_ros`` Node: files, then overrides."""
        return [*self.params_files] + ([dict(self.parameters)] if self.parameters else [])

    def ros_args(self) -> List[str]:
        """Return the ``--ros-args`` command line equivalent to this spec."""
        args = ['--ros-args', '-r', f'__node:={self.name}']
        for path in self.params_files:
            args += ['--params-file', str(path)]
        for key, value in self.parameters.items():
            args += ['-p', f'{key}:={_param_text(value)}']
        for src, dst in self.remappings:
            args += ['-r', f'{src}:={dst}']
        return args


def _param_text(value: ParamValue) -> str:
    if isinstance(value, bool):
        return 'true' if value else 'false'
    return str(value)


def preset_params_file(share_dir: Union[str, Path], preset: str) -> str:
    """Return ``<share>/config/<preset file>``; raise ``ValueError`` naming the valid presets."""
    if preset not in PRESETS:
        raise ValueError(f'unknown preset {preset!r}; choose one of {", ".join(PRESETS)}')
    return str(Path(share_dir) / 'config' / PRESETS[preset])


def policy_node_spec(share_dir: Union[str, Path], *, preset: str = 'isaac_sim',
                     params_file: str = '', policy: str = '', use_sim_time: bool = False,
                     cmd_vel_topic: str = 'cmd_vel', cmd_vel_type: str = '',
                     cmd_vel_stamped: Optional[bool] = None,
                     realtime_priority: Union[str, int] = 0) -> NodeSpec:
    """
    Return the policy node as the launch files start it.

    ``params_file`` (if given) replaces the preset's file; ``policy`` '' keeps the file's value;
    ``cmd_vel_type`` '' and ``cmd_vel_stamped`` None keep the file's values; ``cmd_vel_topic``
    remaps ``cmd_vel``;
    ``realtime_priority`` > 0 runs the process under ``chrt --fifo <priority>``.
    """
    priority = parse_priority(realtime_priority)
    files = [params_file] if params_file else [preset_params_file(share_dir, preset)]
    parameters: Dict[str, ParamValue] = {'use_sim_time': bool(use_sim_time)}
    if policy:
        parameters['policy'] = policy
    if cmd_vel_type:
        parameters['cmd_vel_type'] = cmd_vel_type
    if cmd_vel_stamped is not None:
        parameters['cmd_vel_stamped'] = bool(cmd_vel_stamped)
    remappings = list(PRESET_REMAPPINGS.get(preset, []))
    if cmd_vel_topic and cmd_vel_topic != 'cmd_vel':
        remappings.append(('cmd_vel', cmd_vel_topic))
    prefix = ['chrt', '--fifo', str(priority)] if priority else []
    return NodeSpec(PACKAGE, POLICY_NODE_EXECUTABLE, POLICY_NODE_NAME, files, parameters,
                    remappings, prefix)


def sim_node_spec(share_dir: Union[str, Path], *, sim_params_file: str = '') -> NodeSpec:
    """Return the MuJoCo sim node as ``sim_walk.launch.py`` starts it (it owns ``/clock``)."""
    files = [sim_params_file or str(Path(share_dir) / 'config' / SIM_PARAMS_FILE)]
    return NodeSpec(PACKAGE, SIM_NODE_EXECUTABLE, SIM_NODE_NAME, files, {}, [])


def sim_walk_specs(share_dir: Union[str, Path], *, policy: str = '', params_file: str = '',
                   cmd_vel_topic: str = 'cmd_vel', cmd_vel_type: str = '',
                   cmd_vel_stamped: Optional[bool] = None,
                   realtime_priority: Union[str, int] = 0,
                   sim_params_file: str = '') -> List[NodeSpec]:
    """Return the sim node and the policy node (mujoco_sim preset, sim time) of sim_walk."""
    return [
        sim_node_spec(share_dir, sim_params_file=sim_params_file),
        policy_node_spec(share_dir, preset='mujoco_sim', params_file=params_file, policy=policy,
                         use_sim_time=True, cmd_vel_topic=cmd_vel_topic,
                         cmd_vel_type=cmd_vel_type, cmd_vel_stamped=cmd_vel_stamped,
                         realtime_priority=realtime_priority),
    ]


def robot_description_path(share_dir: Union[str, Path]) -> str:
    """Return the URDF that robot_state_publisher publishes as ``robot_description``."""
    return str(Path(share_dir).joinpath(*ROBOT_URDF))
