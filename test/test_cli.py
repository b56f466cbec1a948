"""
The command lines of training and evaluation as a user meets them (tyro over the configs).

``--help`` lists every config field with its docstring, ``--config FILE.yaml`` gives the
defaults, dotted options are typed and applied, and an unknown or mistyped option is an error
that names it.
"""

import ast
import dataclasses
import inspect
import re
import textwrap
import typing
from typing import Dict, Iterator, Tuple

import pytest
from training import evaluate, train
from training.config import ObservationConfig, RewardConfig
from training.train import dump_config, parse_config, TrainConfig


def _field_docs(cls: type) -> Dict[str, str]:
    """Return ``{field: docstring}`` read from the string literal under each field of ``cls``."""
    body = ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0].body
    return {node.target.id: ' '.join(doc.value.value.split())
            for node, doc in zip(body, body[1:])
            if isinstance(node, ast.AnnAssign) and isinstance(doc, ast.Expr)
            and isinstance(doc.value, ast.Constant) and isinstance(doc.value.value, str)}


def _options(cls: type, prefix: str = '', flat: Tuple[str, ...] = ()
             ) -> Iterator[Tuple[str, str]]:
    """Yield ``(option, docstring)`` of each leaf field of ``cls``; ``flat`` ones add no prefix."""
    docs = _field_docs(cls)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        assert docs.get(f.name), f'{cls.__name__}.{f.name} has no docstring under it'
        option = prefix + f.name.replace('_', '-')
        if dataclasses.is_dataclass(hints[f.name]):
            yield from _options(hints[f.name], '' if f.name in flat else option + '.')
        elif f.default_factory is not dataclasses.MISSING and isinstance(
                f.default_factory(), dict):  # one option per key, the field's doc above them
            yield from ((f'{option}.{key.replace("_", "-")}', docs[f.name])
                        for key in f.default_factory())
        else:
            yield option, docs[f.name]


def _plain(text: str) -> str:
    """Return ``text`` without box drawing and line breaks (words separated by one space)."""
    return ' '.join(re.sub('[│╭╮╰╯─]|-{3,}', ' ', text).split())


def _help(main, capsys, monkeypatch) -> str:
    """Return the ``--help`` text of ``main`` in one column, as plain words."""
    monkeypatch.setenv('COLUMNS', '120')  # wider terminals get several columns of groups
    with pytest.raises(SystemExit) as exc:
        main(['--help'])
    assert exc.value.code == 0
    return _plain(capsys.readouterr().out)


def _error(argv, capsys) -> str:
    """Return the error text of parsing ``argv`` (exit status 2), as plain words."""
    with pytest.raises(SystemExit) as exc:
        parse_config(argv)
    assert exc.value.code == 2
    return _plain(capsys.readouterr().err)


def test_train_help_lists_every_config_field_with_its_docstring(capsys, monkeypatch):
    text = _help(train.main, capsys, monkeypatch)
    options = list(_options(TrainConfig))
    assert len(options) > 100
    for option, doc in options:
        assert re.search(re.escape(f'--{option}') + '[ ,]', text), option
        assert doc in text, (option, doc)
    assert '--config FILE.yaml' in text
    assert '--num-envs INT, --env.num-envs INT' in text and '--robot STR, --env.robot STR' in text


def test_evaluate_help_lists_the_suite_fields_with_their_docstrings(capsys, monkeypatch):
    text = _help(evaluate.main, capsys, monkeypatch)
    for option, doc in _options(evaluate.EvalCommand, flat=('suite',)):
        if option != 'contract':  # the positional argument
            assert re.search(re.escape(f'--{option}') + '[ ,]', text), option
        assert doc in text, (option, doc)


def test_a_dotted_option_is_typed_and_applied():
    defaults = TrainConfig()
    # values that differ from whatever the defaults are, so that each option shows
    feet_phase = defaults.env.rewards.feet_phase + 1.0
    learning_rate = defaults.ppo.learning_rate / 2.0
    seed = defaults.seed + 6
    joint_vel_noise = defaults.env.observations.noise['joint_vel'] + 0.25
    num_envs = defaults.env.num_envs // 2
    lin_vel_x = (defaults.env.commands.lin_vel_x_m_s[0] - 0.5,
                 defaults.env.commands.lin_vel_x_m_s[1] + 0.5)
    backend = 'isaacgym' if defaults.backend != 'isaacgym' else 'mjwarp'
    cfg = parse_config([
        '--env.rewards.feet-phase', f'{feet_phase:g}', '--ppo.learning-rate',
        f'{learning_rate!r}', '--seed', str(seed),
        '--runner.policy.critic-hidden-dims', '64', '32',
        '--env.commands.lin-vel-x-m-s', repr(lin_vel_x[0]), repr(lin_vel_x[1]),
        '--env.observations.noise.joint-vel', repr(joint_vel_noise),
        '--runner.no-tensorboard', '--backend', backend, '--num-envs', str(num_envs),
        '--resume', 'runs/x/model_50.pt'])
    assert cfg.env.rewards.feet_phase == feet_phase
    assert isinstance(cfg.env.rewards.feet_phase, float)  # typed, even when written as '2'
    assert cfg.ppo.learning_rate == learning_rate and cfg.seed == seed
    assert cfg.runner.policy.critic_hidden_dims == (64, 32)
    assert cfg.env.commands.lin_vel_x_m_s == lin_vel_x
    assert cfg.env.observations.noise['joint_vel'] == joint_vel_noise
    # the other keys keep their defaults
    assert cfg.env.observations.noise['base_lin_vel'] == ObservationConfig().noise['base_lin_vel']
    assert cfg.runner.tensorboard is False and cfg.backend == backend
    assert cfg.env.num_envs == num_envs and str(cfg.resume) == 'runs/x/model_50.pt'
    assert cfg.env.rewards.track_lin_vel == RewardConfig().track_lin_vel
    # the defaults are not mutated
    assert TrainConfig().env.rewards.feet_phase == RewardConfig().feet_phase != feet_phase


def test_a_yaml_config_gives_the_defaults_and_options_override_it(tmp_path):
    path = tmp_path / 'partial.yaml'
    path.write_text('env:\n  num_envs: 64\n  rewards:\n    feet_phase: 2.5\n'
                    '  randomization:\n    pushes: false\nppo:\n  gamma: 0.98\n'
                    'runner:\n  policy:\n    actor_hidden_dims: [64, 32]\n')
    for argv in (['--config', str(path), '--ppo.gamma', '0.97'],
                 ['--ppo.gamma', '0.97', f'--config={path}']):
        cfg = parse_config(argv)
        assert cfg.env.num_envs == 64 and cfg.env.rewards.feet_phase == 2.5
        assert cfg.env.randomization.pushes is False
        assert cfg.runner.policy.actor_hidden_dims == (64, 32)
        assert cfg.ppo.gamma == 0.97  # the option, not the file
        assert cfg.env.rewards.track_lin_vel == RewardConfig().track_lin_vel
    # the config.yaml saved in a run folder gives the same config back
    saved = dump_config(cfg, tmp_path / 'run' / 'config.yaml')
    assert parse_config(['--config', str(saved)]) == cfg


@pytest.mark.parametrize('argv, messages', [
    (['--env.rewards.feet-phas', '2'],
     ('Unrecognized options: --env.rewards.feet-phas', 'Perhaps you meant',
      '--env.rewards.feet-phase FLOAT')),
    (['--ppo.gamma', 'fast'], ('Error parsing --ppo.gamma', "'fast'")),
    (['--backend', 'bullet'], ("'bullet'", '--backend', "'mjwarp', 'isaacgym'")),
    (['--ppo.clip-param', '-1'], ('ppo.clip_param must be > 0',)),
])
def test_an_unknown_or_bad_option_is_an_error_naming_it(argv, messages, capsys):
    text = _error(argv, capsys)
    for message in messages:
        assert message in text, (message, text)


def test_an_unknown_key_in_a_yaml_config_is_an_error_naming_it_and_the_file(tmp_path, capsys):
    path = tmp_path / 'bad.yaml'
    path.write_text('env:\n  num_env: 3\n')
    text = _error(['--config', str(path)], capsys)
    assert 'Unrecognized options: --env.num-env, 3' in text
    assert f'comes from {path}' in text
