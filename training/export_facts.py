"""
The facts an exported contract takes from the robot files, the MuJoCo model and the config.

:func:`complete_contract` fills what a contract leaves unknown (``None``): the base link, the
joint limits and, for a MuJoCo backend, the armature and the physics (:func:`robot_facts`,
from the robot files and ``build_mujoco_model``), and the training conditions
(:func:`training_conditions`, from the task config the run recorded in its provenance).  What
none of them records stays unknown.  Used by :mod:`training.export` when it writes a policy
and when it upgrades a format-1 one.
"""

import dataclasses
import math
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

from humanoid_rl_ros.core.contract import (BaseLinVelError, CommandSampling, Latency, PhysicsSpec,
                                           PolicyContract, Randomization, TerrainSpec,
                                           TrainingConditions)

MUJOCO_BACKENDS = ('mjwarp',)
"""Training backends that simulate the MuJoCo model of ``build_mujoco_model`` (its physics)."""


def _load_robot(contract: PolicyContract, env_cfg: Optional[Mapping[str, Any]]) -> Any:
    """Return the contract's robot (the recorded config's robot first), or None if absent."""
    from humanoid_rl_ros.robot.description import load_robot
    name = (env_cfg or {}).get('robot') or contract.robot
    try:
        robot = load_robot(name)
    except FileNotFoundError:
        return None
    mismatch = [field for field, mine in (
        ('joint_names', contract.joint_names), ('default_pos_rad', contract.default_pos_rad),
        ('kp_nm_per_rad', contract.kp_nm_per_rad), ('kd_nms_per_rad', contract.kd_nms_per_rad),
        ('effort_limit_nm', contract.effort_limit_nm))
        if not _same_values(getattr(robot, field), mine)]
    if mismatch:
        raise ValueError(f'the contract and the robot files of {robot.name!r} '
                         f'({robot.description_path.parent}) disagree on {", ".join(mismatch)}; '
                         'the robot-derived facts (limits, base link, physics) cannot be taken '
                         'from them')
    return robot


def _same_values(a: Sequence[Any], b: Sequence[Any]) -> bool:
    """Return whether two sequences are equal (numbers to float32 precision: 1e-6 relative)."""
    a, b = list(a), list(b)
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if isinstance(x, str) or isinstance(y, str):
            if x != y:
                return False
        elif not math.isclose(float(x), float(y), rel_tol=1e-6, abs_tol=1e-9):
            return False
    return True


def _enum_name(enum_type: Any, value: int, prefix: str) -> str:
    return enum_type(int(value)).name[len(prefix):].lower()


def robot_facts(contract: PolicyContract, robot: Any, backend: Optional[str],
                solver_iterations: Optional[int] = None,
                solver_ls_iterations: Optional[int] = None) -> Dict[str, Any]:
    """
    Return the contract fields that the robot files and the MuJoCo model determine.

    Always: the base link and the joint position (MuJoCo's joint ranges) and velocity limits.
    For a MuJoCo backend (:data:`MUJOCO_BACKENDS`) also the physics the policy was trained in,
    read from ``build_mujoco_model(robot, physics_dt_s)`` with the training's solver limits
    (``EnvConfig.solver_iterations`` / ``solver_ls_iterations``; None: the model's): the
    joints' armature, options, gravity, self collision (from the geoms' collision bits) and
    friction.
    """
    import mujoco
    from humanoid_rl_ros.robot.mujoco_model import (build_mujoco_model, FLOOR_GEOM_NAME,
                                                    robot_collision_geoms,
                                                    set_solver_iterations)

    model = build_mujoco_model(robot, contract.physics_dt_s)
    set_solver_iterations(model, solver_iterations, solver_ls_iterations)
    joint_ids = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, name)
                 for name in contract.joint_names]
    facts: Dict[str, Any] = {
        'base_link': robot.base_link,
        'velocity_limit_rad_s': tuple(float(v) for v in robot.velocity_limit_rad_s),
    }
    if all(model.jnt_limited[j] for j in joint_ids):
        facts['position_min_rad'] = tuple(float(model.jnt_range[j, 0]) for j in joint_ids)
        facts['position_max_rad'] = tuple(float(model.jnt_range[j, 1]) for j in joint_ids)
    if backend not in MUJOCO_BACKENDS:
        return facts
    facts['armature_kg_m2'] = tuple(float(model.dof_armature[model.jnt_dofadr[j]])
                                    for j in joint_ids)
    floor = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, FLOOR_GEOM_NAME)
    colliding = robot_collision_geoms(model)
    self_collision = any(
        (model.geom_contype[a] & model.geom_conaffinity[b])
        or (model.geom_contype[b] & model.geom_conaffinity[a])
        for i, a in enumerate(colliding) for b in colliding[i + 1:])
    frictions = {tuple(float(v) for v in model.geom_friction[g]) for g in colliding}
    facts['physics'] = PhysicsSpec(
        simulator=str(backend),
        timestep_s=float(model.opt.timestep),
        integrator=_enum_name(mujoco.mjtIntegrator, model.opt.integrator, 'mjINT_'),
        solver=_enum_name(mujoco.mjtSolver, model.opt.solver, 'mjSOL_'),
        cone=_enum_name(mujoco.mjtCone, model.opt.cone, 'mjCONE_'),
        iterations=int(model.opt.iterations),
        ls_iterations=int(model.opt.ls_iterations),
        gravity_m_s2=tuple(float(v) for v in model.opt.gravity),
        self_collision=bool(self_collision),
        floor_friction=tuple(float(v) for v in model.geom_friction[floor]),
        robot_geom_friction=frictions.pop() if len(frictions) == 1 else None)
    return facts


def _range_if(enabled: Any, values: Any) -> Optional[Tuple[float, float]]:
    return (float(values[0]), float(values[1])) if enabled else None


def training_conditions(env_cfg: Mapping[str, Any], term_names: Sequence[str],
                        backend: Optional[str]) -> TrainingConditions:
    """
    Return the training conditions a recorded task config (``EnvConfig``, plain data) sets.

    What the env code does with each setting: ``randomization.action_latency`` applies the
    previous policy step's action (a delay of 1 policy step, else 0); ``obs_noise`` adds
    ``observations.noise[term]`` uniform noise to the raw terms (only the actor's terms count;
    off: no noise) and, where the actor observes ``base_lin_vel``, the estimator-like error of
    ``observations.lin_vel_*`` (off: none); the domain randomization items are stated for the
    MuJoCo backends only (the friction rule is theirs), each switched-off item as off (the
    items added later by omission: :func:`_later_randomization`); ``terrain.enabled`` states
    the terrain grid (off, or a config without it: the flat floor).  A group whose settings the
    config lacks stays unknown.
    """
    def group(build: Any) -> Any:
        try:
            return build()
        except (KeyError, TypeError):
            return None

    r = env_cfg.get('randomization') or {}
    obs = env_cfg.get('observations') or {}
    cmd = env_cfg.get('commands') or {}
    delay = group(lambda: 1 if r['action_latency'] else 0)
    noise = group(lambda: {name: float(width) for name, width in obs['noise'].items()
                           if name in term_names} if r['obs_noise'] else {})
    randomization = None
    if backend in MUJOCO_BACKENDS:
        randomization = group(lambda: Randomization(
            friction_range=_range_if(r['friction'], r['friction_range']),
            added_base_mass_kg=_range_if(r['added_base_mass'], r['added_base_mass_kg']),
            motor_strength_range=_range_if(r['motor_strength'], r['motor_strength_range']),
            pd_gain_scale_range=_range_if(r['pd_gain_scale'], r['pd_gain_scale_range']),
            push_interval_s=_range_if(r['pushes'], r['push_interval_s']),
            push_lin_vel_m_s=float(r['push_lin_vel_m_s']) if r['pushes'] else None,
            init_joint_noise_rad=float(env_cfg['init_joint_noise_rad']),
            init_base_lin_vel_m_s=float(env_cfg['init_base_vel_m_s']),
            **_later_randomization(r, env_cfg)))
    sampling = group(lambda: CommandSampling(
        resample_interval_s=(float(cmd['resample_interval_s'][0]),
                             float(cmd['resample_interval_s'][1])),
        standing_fraction=float(cmd['standing_fraction']),
        small_command_m_s=float(cmd['small_command_m_s']),
        single_axis_fraction=float(cmd.get('single_axis_fraction', 0.0))))
    lin_vel_error = None
    if 'base_lin_vel' in term_names:
        lin_vel_error = group(lambda: BaseLinVelError(
            bias_m_s=float(obs['lin_vel_bias_m_s']),
            scale_error=float(obs['lin_vel_scale_error']),
            lag_policy_steps=(int(obs['lin_vel_lag_steps'][0]),
                              int(obs['lin_vel_lag_steps'][1])))
            if r['obs_noise'] else BaseLinVelError(0.0, 0.0, (0, 0)))
    terrain = group(lambda: _terrain(env_cfg['terrain']))
    return TrainingConditions(action_delay_policy_steps=delay, observation_noise=noise,
                              randomization=randomization, command_sampling=sampling,
                              base_lin_vel_error=lin_vel_error, terrain=terrain)


def _later_randomization(r: Mapping[str, Any], env_cfg: Mapping[str, Any]) -> Dict[str, Any]:
    """
    Return the randomization items added after the first format-2 files, where switched on.

    A config recorded before a switch existed lacks it: that item was off (the older code had
    none of them), so it stays ``None`` and the contract omits it.  The latency's delays are
    stated in milliseconds as configured and in whole physics steps as the env draws them
    (:func:`training.env.episodes.delay_steps_range`).
    """
    from training.env.episodes import delay_steps_range

    items: Dict[str, Any] = {}
    for switch, key, item in (
            ('link_mass', 'link_mass_scale_range', 'link_mass_scale_range'),
            ('kd_scale', 'kd_scale_range', 'kd_scale_range'),
            ('armature', 'armature_scale_range', 'armature_scale_range'),
            ('joint_friction', 'joint_friction_nm', 'joint_friction_nm'),
            ('joint_damping', 'joint_damping_nms_per_rad', 'joint_damping_nms_per_rad')):
        items[item] = _range_if(r.get(switch), r.get(key))
    if r.get('base_com'):
        items['base_com_offset_m'] = tuple(float(v) for v in r['base_com_offset_m'])
    if r.get('latency'):
        physics_dt_s = float(env_cfg['physics_dt_s'])
        items['latency'] = Latency(
            action_delay_ms=_range_if(True, r['action_delay_ms']),
            action_delay_physics_steps=delay_steps_range(r['action_delay_ms'], physics_dt_s),
            obs_delay_ms=_range_if(True, r['obs_delay_ms']),
            obs_delay_physics_steps=delay_steps_range(r['obs_delay_ms'], physics_dt_s))
    if r.get('imu_bias'):
        items['gyro_bias_rad_s'] = float(r['gyro_bias_rad_s'])
        items['gravity_bias'] = float(r['gravity_bias'])
    if r.get('encoder_bias'):
        items['encoder_bias_rad'] = float(r['encoder_bias_rad'])
    if r['pushes'] and float(r.get('push_lin_vel_z_m_s', 0.0)) > 0.0:
        items['push_lin_vel_z_m_s'] = float(r['push_lin_vel_z_m_s'])
    angular = tuple(float(v) for v in r.get('push_ang_vel_rad_s', (0.0, 0.0, 0.0)))
    if r['pushes'] and any(v > 0.0 for v in angular):
        items['push_ang_vel_rad_s'] = angular
    return items


def _terrain(t: Mapping[str, Any]) -> Optional[TerrainSpec]:
    """Return the terrain a recorded ``TerrainConfig`` trained on; None: the flat floor."""
    if not t['enabled']:
        return None
    return TerrainSpec(kinds=tuple(str(k) for k in t['kinds']),
                       num_levels=int(t['num_levels']),
                       max_slope_deg=float(t['max_slope_deg']),
                       max_rough_m=float(t['max_rough_m']),
                       tile_size_m=float(t['tile_size_m']), curriculum=bool(t['curriculum']))


def complete_contract(contract: PolicyContract) -> PolicyContract:
    """
    Return ``contract`` with its unknown facts filled from the robot, the code and the config.

    Sources: the robot files (loaded by the contract's robot name, or the robot of the
    training config recorded in ``provenance['config']['env']``) through :func:`robot_facts`;
    the recorded training config through :func:`training_conditions`; the training backend
    from ``provenance['backend']``.  Facts the contract already states are kept; facts no
    source records stay unknown.  Raise ValueError when the robot files disagree with the
    contract's joints, pose or gains.
    """
    provenance = contract.provenance
    config = provenance.get('config') if isinstance(provenance.get('config'), Mapping) else {}
    env_cfg = config.get('env') if isinstance(config.get('env'), Mapping) else None
    backend = provenance.get('backend')
    updates: Dict[str, Any] = {}
    robot = _load_robot(contract, env_cfg)
    if robot is not None:
        solver = env_cfg or {}
        for key, value in robot_facts(contract, robot, backend,
                                      solver.get('solver_iterations'),
                                      solver.get('solver_ls_iterations')).items():
            if getattr(contract, key) is None:
                updates[key] = value
    if env_cfg is not None:
        known = training_conditions(env_cfg, contract.term_names(), backend)
        mine = contract.training
        updates['training'] = dataclasses.replace(mine, **{
            f.name: getattr(known, f.name) for f in dataclasses.fields(mine)
            if getattr(mine, f.name) is None})
    return dataclasses.replace(contract, **updates)
