"""
The ros2_control kit: a ``<ros2_control>`` URDF variant and the controller_manager parameters.

Both are generated from the robot (``robot.yaml`` and its URDF) and checked against the policy
contract, so the joints, their order and their effort limits never diverge:

* ``models/robots/<robot>/<robot>.ros2_control.urdf``: the robot's URDF, byte for byte, with one
  ``<ros2_control>`` system block added before ``</robot>``. Every policy joint gets an
  ``effort`` command interface (min/max = the effort limit) and ``position`` (initial value =
  the default pose) and ``velocity`` state interfaces. The hardware plugin defaults to
  ``mock_components/GenericSystem`` (runs anywhere ros2_control is installed); pass your robot's
  driver, ``topic_based_ros2_control/TopicBasedSystem`` (Isaac Sim) or
  ``gz_ros2_control/GazeboSimSystem``.
* ``config/controllers.yaml``: ``joint_state_broadcaster`` and a
  ``forward_command_controller`` named ``effort_controller`` (``interface_name: effort``) with
  the joints in policy order, at the policy's physics rate. The policy node's ``ros2_control``
  preset publishes ``std_msgs/Float64MultiArray`` efforts to ``/effort_controller/commands`` in
  that order.

Generate with::

    python -m humanoid_rl_ros.integration.ros2_control --policy models/humanoid_walk.yaml

``--check`` compares instead of writing (exit status 1 when a file is stale).
"""

from dataclasses import dataclass
from pathlib import Path
import sys
from typing import Any, Dict, Optional, Sequence, Tuple
from xml.sax.saxutils import quoteattr

from humanoid_rl_ros.core.contract import PolicyContract, read_contract
from humanoid_rl_ros.integration.nav2_params import render_yaml
from humanoid_rl_ros.robot.description import load_robot, RobotConfig

__all__ = [
    'check_joint_order',
    'controllers_parameters',
    'EFFORT_CONTROLLER',
    'generate',
    'JOINT_STATE_BROADCASTER',
    'main',
    'MOCK_HARDWARE',
    'ros2_control_block',
    'ros2_control_urdf',
    'Ros2ControlKitConfig',
    'variant_path',
]

EFFORT_CONTROLLER = 'effort_controller'
"""forward_command_controller name; it listens on ``/effort_controller/commands``."""
JOINT_STATE_BROADCASTER = 'joint_state_broadcaster'
"""joint_state_broadcaster name; it publishes ``/joint_states``."""
MOCK_HARDWARE = 'mock_components/GenericSystem'
"""ros2_control's mock hardware: echoes commands to states (no physics)."""
VARIANT_SUFFIX = '.ros2_control.urdf'
"""Suffix of the generated URDF variant: ``kestrel.urdf`` -> ``kestrel.ros2_control.urdf``."""


def variant_path(robot: RobotConfig) -> Path:
    """Return the path of the robot's ``<ros2_control>`` URDF variant (beside its URDF)."""
    description = robot.description_path
    if description.suffix.lower() != '.urdf':
        raise ValueError(f'{description.name}: the ros2_control variant needs a URDF description')
    return description.with_name(description.stem + VARIANT_SUFFIX)


def _number(value: float) -> str:
    return repr(round(float(value), 9) + 0.0)


def ros2_control_block(robot: RobotConfig, hardware_plugin: str = MOCK_HARDWARE,
                       indent: str = '  ') -> str:
    """Return the ``<ros2_control>`` system element for the robot's joints, in policy order."""
    lines = [f'<ros2_control name={quoteattr(robot.name)} type="system">',
             f'{indent}<hardware>',
             f'{indent * 2}<plugin>{hardware_plugin}</plugin>',
             f'{indent}</hardware>']
    for joint in robot.joints:
        limit = _number(joint.effort_limit_nm)
        lines += [
            f'{indent}<joint name={quoteattr(joint.name)}>',
            f'{indent * 2}<command_interface name="effort">',
            f'{indent * 3}<param name="min">-{limit}</param>',
            f'{indent * 3}<param name="max">{limit}</param>',
            f'{indent * 2}</command_interface>',
            f'{indent * 2}<state_interface name="position">',
            f'{indent * 3}<param name="initial_value">{_number(joint.default_pos_rad)}</param>',
            f'{indent * 2}</state_interface>',
            f'{indent * 2}<state_interface name="velocity"/>',
            f'{indent}</joint>']
    lines.append('</ros2_control>')
    return '\n'.join(indent + line for line in lines) + '\n'


def ros2_control_urdf(robot: RobotConfig, urdf_text: str,
                      hardware_plugin: str = MOCK_HARDWARE) -> str:
    """Return ``urdf_text`` with the ``<ros2_control>`` block inserted before ``</robot>``."""
    end = urdf_text.rfind('</robot>')
    if end < 0:
        raise ValueError(f'{robot.description_path.name}: no closing </robot> tag')
    if '<ros2_control' in urdf_text:
        raise ValueError(f'{robot.description_path.name} already has a <ros2_control> element')
    source = robot.description_path.name
    comment = (f'  <!-- GENERATED: {source} plus this ros2_control block (effort commands, '
               'position/velocity states, policy joint order). Regenerate with: python -m '
               'humanoid_rl_ros.integration.ros2_control -->\n')
    return urdf_text[:end] + comment + ros2_control_block(robot, hardware_plugin) + \
        urdf_text[end:]


def controllers_parameters(robot: RobotConfig, update_rate_hz: int) -> Dict[str, Any]:
    """Return controller_manager's parameters: the broadcaster and the effort controller."""
    return {
        'controller_manager': {'ros__parameters': {
            'update_rate': int(update_rate_hz),
            JOINT_STATE_BROADCASTER: {
                'type': 'joint_state_broadcaster/JointStateBroadcaster'},
            EFFORT_CONTROLLER: {
                'type': 'forward_command_controller/ForwardCommandController'}}},
        EFFORT_CONTROLLER: {'ros__parameters': {
            'joints': list(robot.joint_names),
            'interface_name': 'effort'}},
    }


def check_joint_order(robot: RobotConfig, contract: PolicyContract) -> None:
    """Raise ``ValueError`` unless the contract's joints are the robot's, in policy order."""
    if tuple(contract.joint_names) != tuple(robot.joint_names):
        raise ValueError(f"the policy contract's joints {list(contract.joint_names)} are not "
                         f"the robot's joints in policy order {list(robot.joint_names)}")


@dataclass
class Ros2ControlKitConfig:
    """Generate the ``<ros2_control>`` URDF variant and config/controllers.yaml."""

    policy: Path = Path('models/humanoid_walk.yaml')
    """Policy contract; its robot and joint order are used (and checked against robot.yaml)."""
    controllers_out: Path = Path('config/controllers.yaml')
    """controller_manager parameter file to write."""
    hardware_plugin: str = MOCK_HARDWARE
    """ros2_control hardware plugin of the URDF variant."""
    check: bool = False
    """Compare with the files instead of writing them; exit status 1 when one differs."""


def generate(cfg: Ros2ControlKitConfig) -> Tuple[Tuple[Path, str], Tuple[Path, str]]:
    """Return ``((urdf_path, urdf_text), (controllers_path, controllers_text))`` for ``cfg``."""
    contract = read_contract(cfg.policy)
    robot = load_robot(contract.robot)
    check_joint_order(robot, contract)
    urdf = ros2_control_urdf(robot, robot.description_path.read_text(), cfg.hardware_plugin)
    rate_hz = round(1.0 / contract.physics_dt_s)
    header = [
        'ros2_control controllers for the walking humanoid: GENERATED, do not edit by hand.',
        'python -m humanoid_rl_ros.integration.ros2_control --policy '
        f'models/{Path(cfg.policy).name}',
        f'Joints in policy order of {Path(cfg.policy).name} (robot {robot.name}); update rate '
        f'= 1 / physics_dt_s = {rate_hz} Hz.',
        f'The policy node (preset ros2_control) publishes Float64MultiArray efforts to '
        f'/{EFFORT_CONTROLLER}/commands.',
    ]
    controllers = render_yaml(controllers_parameters(robot, rate_hz), header)
    return (variant_path(robot), urdf), (cfg.controllers_out, controllers)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Write (or ``--check``) the URDF variant and the controllers file; return the status."""
    import tyro
    cfg = tyro.cli(Ros2ControlKitConfig, args=argv,
                   description=__doc__.split('\n\n')[0].strip())
    stale = []
    for path, text in generate(cfg):
        if cfg.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(path)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f'wrote {path}')
    if stale:
        print(f'stale: {", ".join(map(str, stale))}; regenerate with python -m '
              'humanoid_rl_ros.integration.ros2_control', file=sys.stderr)
        return 1
    if cfg.check:
        print('ros2_control files are up to date')
    return 0


if __name__ == '__main__':
    sys.exit(main())
