"""
The Nav2 kit: config/nav2_params.yaml agrees with the policy contract, and the Nav2 launch file.

The committed parameter file is regenerated from ``models/humanoid_walk.yaml`` and its command
envelope (``benchmarks/envelope/envelope.json``) and compared, so a retrained policy with other
command ranges or another envelope cannot ship with stale Nav2 limits. The launch file
is read as Python source (``launch_ros`` is not installable here) and checked for the pieces a
user relies on.
"""

import ast
import dataclasses
import json
from pathlib import Path

from humanoid_rl_ros.core.contract import CommandRanges, read_contract
from humanoid_rl_ros.integration import nav2_params
from humanoid_rl_ros.integration.nav2_params import (command_limits, footprint_box_m,
                                                     footprint_polygon, Nav2KitConfig)
from humanoid_rl_ros.robot.description import load_robot, models_dir
from humanoid_rl_ros.ros import launch_config
import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
POLICY = models_dir() / 'humanoid_walk.yaml'
PARAMS_FILE = REPO_ROOT / 'config' / 'nav2_params.yaml'
ENVELOPE = Path('benchmarks/envelope/envelope.json')  # relative: as the header names it
LAUNCH_FILE = REPO_ROOT / 'launch' / 'nav2_walk.launch.py'


@pytest.fixture(scope='module')
def committed() -> dict:
    return yaml.safe_load(PARAMS_FILE.read_text())


def test_committed_file_is_what_the_generator_writes(monkeypatch) -> None:
    """Regenerating from the shipped contract reproduces config/nav2_params.yaml exactly."""
    monkeypatch.chdir(REPO_ROOT)  # the envelope's path is written as given, from the root
    text = nav2_params.generate(Nav2KitConfig(policy=POLICY, envelope=ENVELOPE))
    assert text == PARAMS_FILE.read_text(), (
        'config/nav2_params.yaml is stale: python -m humanoid_rl_ros.integration.nav2_params '
        '--policy models/humanoid_walk.yaml --envelope benchmarks/envelope/envelope.json '
        '--out config/nav2_params.yaml')


def test_check_mode_reports_a_stale_file(tmp_path: Path, monkeypatch) -> None:
    """--check exits 0 on the committed file and 1 on an edited copy, which it leaves alone."""
    monkeypatch.chdir(REPO_ROOT)
    assert nav2_params.main(['--policy', str(POLICY), '--envelope', str(ENVELOPE),
                             '--out', str(PARAMS_FILE), '--check']) == 0
    stale = tmp_path / 'nav2_params.yaml'
    stale.write_text(PARAMS_FILE.read_text().replace('vx_max: 1.2', 'vx_max: 2.0'))
    assert nav2_params.main(['--policy', str(POLICY), '--envelope', str(ENVELOPE),
                             '--out', str(stale), '--check']) == 1
    assert 'vx_max: 2.0' in stale.read_text()
    written = tmp_path / 'fresh.yaml'
    assert nav2_params.main(['--policy', str(POLICY), '--envelope', str(ENVELOPE),
                             '--out', str(written)]) == 0
    assert written.read_text() == PARAMS_FILE.read_text()


def test_speed_limits_are_the_trained_ranges_narrowed_to_the_envelope(committed: dict) -> None:
    """
    MPPI and the velocity smoother allow the contract's ranges where the policy follows them.

    The shipped policy follows vx -0.6..1.2 and vy +-0.5 m/s to their ends, but yaw rates only
    up to 0.8 rad/s (0.16-0.17 rad/s too fast at 0.9 and 1.0), and turns on the spot only from 0.5
    rad/s: Nav2's spin behaviour must not ask for less.
    """
    commands = read_contract(POLICY).commands
    mppi = committed['controller_server']['ros__parameters']['FollowPath']
    smoother = committed['velocity_smoother']['ros__parameters']
    spin = committed['behavior_server']['ros__parameters']
    assert (mppi['vx_min'], mppi['vx_max']) == tuple(commands.lin_vel_x_m_s) == (-0.6, 1.2)
    assert tuple(commands.ang_vel_z_rad_s) == (-1.0, 1.0)
    assert mppi['vy_max'] == 0.5 and mppi['wz_max'] == 0.8
    assert smoother['max_velocity'] == [1.2, 0.5, 0.8]
    assert smoother['min_velocity'] == [-0.6, -0.5, -0.8]
    assert (spin['min_rotational_vel'], spin['max_rotational_vel']) == (0.5, 0.8)


def _envelope(**reached_by_axis) -> dict:
    """Return an envelope report: per axis, command -> reached velocity (None: fell)."""
    def followed(command, reached):
        return reached is not None and abs(reached - command) <= 0.15

    return {'axes': {axis: {'runs': [{'command': c, 'reached': {axis: r}}
                                     for c, r in reached.items()],
                            'followed': [followed(c, r) for c, r in reached.items()]}
                     for axis, reached in reached_by_axis.items()}}


def test_followed_band_is_the_longest_run_on_each_side() -> None:
    commands = [-0.3, -0.2, -0.1, 0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
    followed = [True, True, True, True, True, False, True, True, False]
    assert nav2_params.followed_band(commands, followed, +1.0) == (0.3, 0.4)
    assert nav2_params.followed_band(commands, followed, -1.0) == (0.1, 0.3)
    # two runs as long: the one of larger magnitudes
    assert nav2_params.followed_band(commands, [True] * 5 + [False, True, False, True],
                                     +1.0) == (0.5, 0.5)
    assert nav2_params.followed_band(commands, [False] * 9, +1.0) is None
    with pytest.raises(ValueError, match='9 commands but 2 followed flags'):
        nav2_params.followed_band(commands, [True, True], +1.0)


LIN = {-0.5: -0.5, -0.3: -0.3, 0.0: 0.0, 0.3: 0.3, 0.5: 0.5, 1.5: 1.5}
YAW = {-1.0: -1.2, -0.8: -0.8, -0.6: -0.6, -0.2: 0.0, 0.0: 0.0, 0.1: 0.01, 0.2: 0.0,
       0.4: 0.4, 0.8: 0.8, 1.0: 1.2}


def test_envelope_limits_narrow_the_ranges_and_set_the_least_spin_rate() -> None:
    limits = command_limits(CommandRanges((-0.6, 1.2), (-0.5, 0.5), (-1.0, 1.0)))
    narrowed, spin = nav2_params.envelope_limits(
        limits, _envelope(vx_m_s=LIN, vy_m_s={-0.3: None, 0.0: 0.0, 0.3: 0.3, 0.6: 0.2},
                          wz_rad_s=YAW))
    assert narrowed.vx_m_s == (-0.5, 1.2)  # never beyond the trained range
    assert narrowed.vy_m_s == (0.0, 0.3)  # fell at -0.3: no command that way
    # +0.1 rad/s is "followed" standing still (within 0.15): not a turn, so not the band start
    assert narrowed.wz_rad_s == (-0.8, 0.8) and spin == 0.6  # the larger of 0.6 and 0.4
    assert (narrowed.ax_m_s2, narrowed.az_rad_s2) == (limits.ax_m_s2, limits.az_rad_s2)


@pytest.mark.parametrize('yaw, message', [
    ({**YAW, -0.8: 0.0, -0.6: 0.0}, 'one way at most'),
    ({**YAW, 0.8: 0.4}, 'turns from 0.6 rad/s but follows yaw rates only up to 0.4'),
    ({k: v for k, v in YAW.items() if k >= 0.0}, 'sweeps no negative wz_rad_s command'),
    (None, 'no wz_rad_s axis')])
def test_envelope_limits_refuse_what_nav2_cannot_use(yaw, message) -> None:
    limits = command_limits(CommandRanges((-0.6, 1.2), (-0.5, 0.5), (-1.0, 1.0)))
    axes = {'vx_m_s': LIN, 'vy_m_s': LIN, **({} if yaw is None else {'wz_rad_s': yaw})}
    with pytest.raises(ValueError, match=message):
        nav2_params.envelope_limits(limits, _envelope(**axes))


def test_an_envelope_of_another_graph_is_refused_even_under_the_same_name(
        tmp_path: Path, capsys) -> None:
    """A policy retrained under the same name keeps its file name, not its envelope."""
    report = json.loads((REPO_ROOT / ENVELOPE).read_text())
    stale = tmp_path / 'envelope.json'
    stale.write_text(json.dumps({**report, 'policy_graph_sha256': '0' * 64}))
    with pytest.raises(ValueError, match='graph 000000000000.* not this policy'):
        nav2_params.generate(Nav2KitConfig(policy=POLICY, envelope=stale))
    del report['policy_graph_sha256']
    stale.write_text(json.dumps(report))
    assert nav2_params.main(['--policy', str(POLICY), '--envelope', str(stale),
                             '--out', str(tmp_path / 'x.yaml')]) == 2
    assert 'records no policy graph' in capsys.readouterr().err
    assert not (tmp_path / 'x.yaml').exists()


def test_acceleration_rule_spreads_the_range_over_the_rise_time(committed: dict) -> None:
    """Acceleration = max(|low|, |high|) / 1 s: 1.2 m/s^2 forward, 0.5 sideways, 1 rad/s^2 yaw."""
    mppi = committed['controller_server']['ros__parameters']['FollowPath']
    smoother = committed['velocity_smoother']['ros__parameters']
    assert smoother['max_accel'] == [1.2, 0.5, 1.0]
    assert smoother['max_decel'] == [-1.2, -0.5, -1.0]
    assert (mppi['ax_max'], mppi['ax_min'], mppi['ay_max'], mppi['az_max']) == (
        1.2, -1.2, 0.5, 1.0)
    # Asymmetric ranges: the larger end sets the limit; a 0.5 s rise time doubles it.
    limits = command_limits(CommandRanges((-0.3, 0.8), (-0.2, 0.4), (-1.5, 0.5)),
                            rise_time_s=0.5)
    assert (limits.ax_m_s2, limits.ay_m_s2, limits.az_rad_s2) == (1.6, 0.8, 3.0)
    assert limits.vy_symmetric_m_s == 0.2 and limits.wz_symmetric_rad_s == 0.5


@pytest.mark.parametrize('ranges, message', [
    (((0.1, 1.0), (-0.5, 0.5), (-1.0, 1.0)), 'lin_vel_x_m_s'),
    (((-0.5, 1.0), (-0.5, 0.5), (-1.0, -0.2)), 'ang_vel_z_rad_s'),
])
def test_ranges_without_zero_are_refused(ranges, message) -> None:
    """A range that excludes standing still cannot be navigated; the error names the axis."""
    with pytest.raises(ValueError, match=message):
        command_limits(CommandRanges(*ranges))
    with pytest.raises(ValueError, match='rise_time_s'):
        command_limits(CommandRanges((-1.0, 1.0), (-1.0, 1.0), (-1.0, 1.0)), rise_time_s=0.0)


def test_controller_is_holonomic_and_frames_are_the_robots(committed: dict) -> None:
    """MPPI Omni keeps vy; every base frame is robot.yaml's base link; odom on odom."""
    base = load_robot('kestrel').base_link
    assert base == 'pelvis'
    server = committed['controller_server']['ros__parameters']
    assert server['FollowPath']['plugin'] == 'nav2_mppi_controller::MPPIController'
    assert server['FollowPath']['motion_model'] == 'Omni'
    assert server['min_y_velocity_threshold'] < 0.01
    assert server['odom_topic'] == 'odom'
    assert committed['velocity_smoother']['ros__parameters']['odom_topic'] == 'odom'
    bases = [committed['bt_navigator']['ros__parameters']['robot_base_frame'],
             committed['behavior_server']['ros__parameters']['robot_base_frame'],
             committed['collision_monitor']['ros__parameters']['base_frame_id'],
             committed['docking_server']['ros__parameters']['base_frame']]
    for costmap in ('local_costmap', 'global_costmap'):
        bases.append(committed[costmap][costmap]['ros__parameters']['robot_base_frame'])
    assert set(bases) == {base}
    assert committed['local_costmap']['local_costmap']['ros__parameters'][
        'global_frame'] == 'odom'


def test_stamped_cmd_vel_everywhere_as_in_kilted(committed: dict) -> None:
    """Every node that speaks cmd_vel uses TwistStamped (Kilted's default); --no- flips all."""
    speakers = [node for node, tree in committed.items()
                if 'enable_stamped_cmd_vel' in tree.get('ros__parameters', {})]
    assert sorted(speakers) == ['behavior_server', 'collision_monitor', 'controller_server',
                                'docking_server', 'velocity_smoother']
    assert all(committed[n]['ros__parameters']['enable_stamped_cmd_vel'] is True
               for n in speakers)
    contract, robot = read_contract(POLICY), load_robot('kestrel')
    twist = nav2_params.nav2_parameters(
        contract, robot, Nav2KitConfig(policy=POLICY, enable_stamped_cmd_vel=False))
    assert all(twist[n]['ros__parameters']['enable_stamped_cmd_vel'] is False
               for n in speakers)


def test_footprint_is_the_robots_extent_at_the_default_pose(committed: dict) -> None:
    """The footprint covers the Kestrel geoms: feet forward to x 0.174 m, forearms to 0.278 m."""
    (x_min, y_min), (x_max, y_max) = footprint_box_m(load_robot('kestrel'))
    # Toes: foot box centre 0.0635 m ahead of the ankle, half-length 0.11 m; forearms out at
    # |y| 0.278 m with the shoulders rolled out 0.15 rad; the torso box reaches back to -0.08.
    assert x_max == pytest.approx(0.174, abs=1e-3) and x_min == pytest.approx(-0.08, abs=1e-6)
    assert y_max == pytest.approx(0.278, abs=1e-3) and y_min == pytest.approx(-y_max, abs=1e-9)
    polygon = footprint_polygon(((x_min, y_min), (x_max, y_max)))
    assert polygon == [[0.175, 0.279], [-0.08, 0.279], [-0.08, -0.279], [0.175, -0.279]]
    for costmap in ('local_costmap', 'global_costmap'):
        params = committed[costmap][costmap]['ros__parameters']
        assert yaml.safe_load(params['footprint']) == polygon  # Nav2 takes it as a string


def test_rounding_is_outward() -> None:
    """A box edge between millimetres moves outward, never inward."""
    assert footprint_polygon(((-0.1004, -0.2), (0.2001, 0.3))) == [
        [0.201, 0.3], [-0.101, 0.3], [-0.101, -0.2], [0.201, -0.2]]


def test_config_defaults_are_documented() -> None:
    """Every generator option carries a docstring (tyro shows it in --help)."""
    source = Path(nav2_params.__file__).read_text()
    for field in dataclasses.fields(Nav2KitConfig):
        assert f'    {field.name}:' in source


# --- launch/nav2_walk.launch.py, read as source (launch_ros is not installable here) ---------


@pytest.fixture(scope='module')
def launch_tree() -> ast.Module:
    return ast.parse(LAUNCH_FILE.read_text())


def _calls(tree: ast.AST, name: str) -> list:
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call) and (
        getattr(node.func, 'id', '') == name or getattr(node.func, 'attr', '') == name)]


def _strings(tree: ast.AST) -> set:
    return {node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)}


def test_launch_declares_every_argument_it_reads(launch_tree) -> None:
    """Each LaunchConfiguration has a DeclareLaunchArgument with a description."""
    declared = {}
    for call in _calls(launch_tree, 'DeclareLaunchArgument'):
        if call.args and isinstance(call.args[0], ast.Constant):
            keywords = {k.arg for k in call.keywords}
            assert 'description' in keywords, f'{call.args[0].value}: no description'
            declared[call.args[0].value] = keywords
    # The launch setup reads every argument through arg('<name>').
    used = {call.args[0].value for call in _calls(launch_tree, 'arg')
            if call.args and isinstance(call.args[0], ast.Constant)}
    assert {'target', 'nav2_params_file', 'use_sim_time', 'map_to_odom'} <= used
    shared = {arg.name for arg in launch_config.POLICY_ARGUMENTS}
    assert used - shared <= set(declared), f'undeclared: {sorted(used - shared - set(declared))}'
    for name in ('target', 'params_file', 'nav2_params_file', 'use_sim_time', 'map_to_odom'):
        assert name in declared, f'{name} is not declared'


def test_launch_brings_up_nav2_and_the_walker(launch_tree) -> None:
    """It includes nav2_bringup's navigation_launch.py and the package's sim or walk launch."""
    strings = _strings(launch_tree)
    assert {'nav2_bringup', 'navigation_launch.py', 'sim_walk.launch.py',
            'walk.launch.py', 'nav2_params.yaml'} <= strings
    assert _calls(launch_tree, 'IncludeLaunchDescription')
    assert _calls(launch_tree, 'PythonLaunchDescriptionSource')
    # The sim publishes odom -> base link on /tf for Nav2; map -> odom is a static identity
    # in the sim unless localization provides it.
    assert 'publish_tf' in strings
    assert 'static_transform_publisher' in strings and 'tf2_ros' in strings
    # The policy node's cmd_vel type follows Nav2's enable_stamped_cmd_vel.
    assert 'cmd_vel_stamped' in strings


def test_launch_targets_are_the_package_launch_files() -> None:
    """The launch files it includes exist in launch/ (installed to share/ by setup.py)."""
    for name in ('sim_walk.launch.py', 'walk.launch.py'):
        assert (REPO_ROOT / 'launch' / name).is_file()
    compile(LAUNCH_FILE.read_text(), str(LAUNCH_FILE), 'exec')


def test_policy_node_cmd_vel_type_follows_the_last_nav2_publisher(committed: dict) -> None:
    """The collision monitor publishes Nav2's final cmd_vel: its setting decides the type."""
    assert nav2_params.stamped_cmd_vel(committed) is True
    assert nav2_params.stamped_cmd_vel({}) is True
    assert nav2_params.stamped_cmd_vel({}, default=False) is False
    mixed = {'controller_server': {'ros__parameters': {'enable_stamped_cmd_vel': True}},
             'velocity_smoother': {'ros__parameters': {'enable_stamped_cmd_vel': False}}}
    assert nav2_params.stamped_cmd_vel(mixed) is False
    mixed['collision_monitor'] = {'ros__parameters': {'enable_stamped_cmd_vel': True}}
    assert nav2_params.stamped_cmd_vel(mixed) is True


def test_base_frame_is_the_robots_and_the_contracts() -> None:
    """The contract names pelvis as its base link; a contract naming another one is refused."""
    contract, robot = read_contract(POLICY), load_robot('kestrel')
    assert nav2_params.base_frame(contract, robot) == 'pelvis'
    if getattr(contract, 'base_link', None) is None:
        pytest.skip('this contract format names no base link')
    other = dataclasses.replace(contract, base_link='torso_link')
    with pytest.raises(ValueError, match="'torso_link'.*'pelvis'"):
        nav2_params.base_frame(other, robot)
