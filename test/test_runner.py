"""The on-policy runner on CPU with a tiny point-mass VecEnv: learning, logging, checkpoints."""

import json
from typing import Any, Dict, Tuple

import pytest
import torch

from training.ppo import PolicyConfig, PPOConfig
from training.runner import OnPolicyRunner, RunnerConfig, set_seed
from training.vec_env import VecEnv


class PointMassEnv(VecEnv):
    """1-D point mass that must move to a random target; 0.1 m per unit action per step."""

    def __init__(self, num_envs: int = 64, max_episode_length: int = 20, seed: int = 0):
        """Create the batch; targets and starts are uniform in [-1, 1] m."""
        self.num_envs = num_envs
        self.num_obs = 2
        self.num_critic_obs = 3
        self.num_actions = 1
        self.device = torch.device('cpu')
        self.max_episode_length = max_episode_length
        self.gen = torch.Generator().manual_seed(seed)
        self.pos = torch.zeros(num_envs)
        self.target = torch.zeros(num_envs)
        self.steps = torch.zeros(num_envs, dtype=torch.long)
        self._reset_envs(torch.ones(num_envs, dtype=torch.bool))

    def _reset_envs(self, mask: torch.Tensor) -> None:
        n = int(mask.sum())
        self.pos[mask] = torch.rand(n, generator=self.gen) * 2 - 1
        self.target[mask] = torch.rand(n, generator=self.gen) * 2 - 1
        self.steps[mask] = 0

    def _obs(self) -> Tuple[torch.Tensor, torch.Tensor]:
        err = self.target - self.pos
        return (torch.stack([err, self.pos], -1),
                torch.stack([err, self.pos, self.target], -1))

    def reset(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """Reset every env."""
        self._reset_envs(torch.ones(self.num_envs, dtype=torch.bool))
        return self._obs()

    def step(self, actions: torch.Tensor) -> Tuple[Any, Any, Any, Any, Dict[str, Any]]:
        """Move, reward -|error|, terminate (with a penalty) beyond 2 m, time out at the limit."""
        self.pos += 0.1 * actions[:, 0].clamp(-1.0, 1.0)
        self.steps += 1
        err = (self.target - self.pos).abs()
        fell = self.pos.abs() > 2.0
        rewards = -err - 5.0 * fell.float()
        time_outs = (self.steps >= self.max_episode_length) & ~fell
        dones = fell | time_outs
        log = {'pos_err': err.mean()}
        if dones.any():
            log['episode_length'] = self.steps[dones].float().mean()
        self._reset_envs(dones)
        obs, critic_obs = self._obs()
        return obs, critic_obs, rewards, dones, {'time_outs': time_outs, 'log': log}


def _runner(tmp_path, **runner_kw) -> OnPolicyRunner:
    set_seed(0)
    cfg = RunnerConfig(policy=PolicyConfig(actor_hidden_dims=(32, 32),
                                           critic_hidden_dims=(32, 32)),
                       **runner_kw)
    return OnPolicyRunner(PointMassEnv(), PPOConfig(), cfg, log_dir=tmp_path, device='cpu')


def _final_error(runner: OnPolicyRunner) -> float:
    env = PointMassEnv(num_envs=256, seed=123)
    obs, _ = env.reset()
    policy = runner.inference_policy()
    for _ in range(15):
        obs, _, _, _, _ = env.step(policy(obs))
    return float((env.target - env.pos).abs().mean())


def test_runner_learns_point_mass(tmp_path, capsys):
    runner = _runner(tmp_path, save_interval=100, tensorboard=False, plot=False)
    error_before = _final_error(runner)
    history = runner.learn(num_iterations=40)
    assert len(history) == 40
    for row in history:
        for key in ('surrogate_loss', 'value_loss', 'entropy', 'approx_kl'):
            assert torch.isfinite(torch.tensor(row[key])), (key, row)
    first = sum(r['mean_reward'] for r in history[1:4]) / 3
    last = sum(r['mean_reward'] for r in history[-3:]) / 3
    # Random policy: about -0.6 m error per step over 20 steps; the learned one reaches the target.
    assert last > first + 6.0, (first, last)
    error_after = _final_error(runner)
    assert error_after < 0.25 * error_before, (error_before, error_after)
    out = capsys.readouterr().out
    assert 'it 40/40' in out and 'steps/s' in out and 'pos_err' in out and 'ETA' in out


def test_checkpoint_resume_and_logs(tmp_path):
    runner = _runner(tmp_path, save_interval=2)
    runner.learn(num_iterations=3)
    runner.close()
    assert (tmp_path / 'model_2.pt').is_file()
    assert (tmp_path / 'model_3.pt').is_file()
    assert (tmp_path / 'history.csv').is_file()
    assert (tmp_path / 'learning_curves.png').stat().st_size > 1000
    assert any(p.name.startswith('events.out.tfevents') for p in tmp_path.iterdir())
    rows = json.loads((tmp_path / 'history.json').read_text())
    assert [r['iteration'] for r in rows] == [1.0, 2.0, 3.0]
    assert 'env/pos_err' in rows[0] and rows[0]['wall_time_s'] > 0.0

    resumed = _runner(tmp_path / 'resumed')
    resumed.resume(tmp_path / 'model_3.pt')
    assert resumed.current_iteration == 3
    obs = torch.randn(5, 2)
    torch.testing.assert_close(resumed.inference_policy()(obs), runner.inference_policy()(obs))
    history = resumed.learn(num_iterations=2)
    resumed.close()
    assert [r['iteration'] for r in history] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert history[-1]['wall_time_s'] > history[2]['wall_time_s']
    assert (tmp_path / 'resumed' / 'model_5.pt').is_file()


def test_time_budget_runs_at_least_one_iteration(tmp_path):
    runner = _runner(tmp_path, tensorboard=False, plot=False)
    history = runner.learn(time_budget_s=1e-6)
    assert len(history) == 1


def test_bad_arguments_are_named(tmp_path):
    runner = _runner(tmp_path, tensorboard=False, plot=False)
    with pytest.raises(ValueError, match='num_iterations'):
        runner.learn()
    with pytest.raises(FileNotFoundError, match='checkpoint'):
        runner.resume(tmp_path / 'missing.pt')
    with pytest.raises(ValueError, match='save_interval'):
        RunnerConfig(save_interval=0)


def test_only_the_newest_checkpoints_are_kept_and_the_deletions_are_printed(tmp_path, capsys):
    snapshot = tmp_path / 'snapshots' / 'run_it00002.onnx'
    snapshot.parent.mkdir(parents=True)
    snapshot.write_bytes(b'policy')
    (tmp_path / 'model_0_interrupted.pt').write_bytes(b'checkpoint')
    runner = _runner(tmp_path, save_interval=1, keep_checkpoints=3, tensorboard=False,
                     plot=False)
    runner.learn(num_iterations=5)
    names = sorted(path.name for path in tmp_path.glob('model_*.pt'))
    assert names == ['model_0_interrupted.pt', 'model_3.pt', 'model_4.pt', 'model_5.pt']
    assert snapshot.read_bytes() == b'policy'  # snapshots and other files are never deleted
    out = capsys.readouterr().out
    assert 'saved model_4.pt; deleted model_1.pt (keeping the last 3 checkpoints)' in out
    assert 'saved model_5.pt; deleted model_2.pt' in out
    resumed = _runner(tmp_path / 'resumed')
    resumed.resume(tmp_path / 'model_3.pt')
    assert resumed.current_iteration == 3


def test_a_reused_run_folder_keeps_the_new_runs_checkpoints(tmp_path):
    """Checkpoints of a higher iteration, left by an earlier run, never push out the new ones."""
    for old in (1000, 1450, 1500):
        (tmp_path / f'model_{old}.pt').write_bytes(b'earlier run')
    runner = _runner(tmp_path, save_interval=1, keep_checkpoints=3, tensorboard=False,
                     plot=False)
    runner.learn(num_iterations=5)
    names = sorted(int(p.stem.split('_')[1]) for p in tmp_path.glob('model_*.pt'))
    assert names == [3, 4, 5, 1000, 1450, 1500]


def test_keep_checkpoints_zero_keeps_every_checkpoint(tmp_path):
    runner = _runner(tmp_path, save_interval=1, keep_checkpoints=0, tensorboard=False,
                     plot=False)
    runner.learn(num_iterations=4)
    assert sorted(path.name for path in tmp_path.glob('model_*.pt')) == [
        'model_1.pt', 'model_2.pt', 'model_3.pt', 'model_4.pt']
    with pytest.raises(ValueError, match='keep_checkpoints'):
        RunnerConfig(keep_checkpoints=-1)


class RampedPointMassEnv(PointMassEnv):
    """The point mass with a disturbance curriculum hook that records what the runner set."""

    def __init__(self) -> None:
        """Create the batch; no iteration seen yet."""
        super().__init__(num_envs=16)
        self.iterations_seen = []

    def on_iteration(self, iteration: int) -> float:
        """Record the iteration; the scale ramps over 4 iterations."""
        self.iterations_seen.append(iteration)
        return min(1.0, iteration / 4)


def test_the_runner_tells_the_env_each_iteration_before_its_rollout(tmp_path):
    set_seed(0)
    cfg = RunnerConfig(policy=PolicyConfig(actor_hidden_dims=(8,), critic_hidden_dims=(8,)),
                       tensorboard=False, plot=False, save_interval=100)
    env = RampedPointMassEnv()
    runner = OnPolicyRunner(env, PPOConfig(), cfg, log_dir=tmp_path, device='cpu')
    runner.learn(num_iterations=3)
    history = runner.learn(num_iterations=3)  # a second call goes on counting (all rows)
    assert env.iterations_seen == [0, 0, 1, 2, 3, 4, 5]  # also before the first reset
    assert [row['env/disturbance_scale'] for row in history] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    assert 'disturbance_scale 0.250' in runner._progress_line(history[1], None, 0.0)
    # before the first episode ends, the line says so instead of printing nan
    early = dict(history[1], mean_reward=float('nan'), mean_episode_length=float('nan'))
    line = runner._progress_line(early, None, 0.0)
    assert 'return - (no episode ended yet)' in line and 'ep_len -' in line
    assert 'nan' not in line
    # an env without the hook: no such column
    plain = _runner(tmp_path / 'plain', tensorboard=False, plot=False, save_interval=100)
    assert 'env/disturbance_scale' not in plain.learn(num_iterations=1)[0]


class CountingPointMassEnv(PointMassEnv):
    """The point mass, counting its resets."""

    def __init__(self) -> None:
        """Create the batch; no reset counted yet."""
        super().__init__(num_envs=16, max_episode_length=1000)
        self.resets = 0

    def reset(self):
        """Count, then reset every env."""
        self.resets += 1
        return super().reset()


def test_learning_in_chunks_keeps_the_episodes_going(tmp_path):
    # a run in chunks (a snapshot export between them) must not restart every episode
    set_seed(0)
    cfg = RunnerConfig(policy=PolicyConfig(actor_hidden_dims=(8,), critic_hidden_dims=(8,)),
                       tensorboard=False, plot=False, save_interval=100, num_steps_per_env=8)
    env = CountingPointMassEnv()
    runner = OnPolicyRunner(env, PPOConfig(), cfg, log_dir=tmp_path, device='cpu')
    runner.learn(num_iterations=2)
    steps_before = env.steps.clone()
    runner.learn(num_iterations=1)
    runner.learn(num_iterations=1)
    assert env.resets == 1
    # episodes of 1000 steps: none ended, each env is 2 x 8 steps further along
    assert torch.equal(env.steps, steps_before + 16)


def test_start_up_time_is_each_process_first_iteration_and_survives_a_resume(tmp_path):
    set_seed(0)
    cfg = RunnerConfig(policy=PolicyConfig(actor_hidden_dims=(8,), critic_hidden_dims=(8,)),
                       tensorboard=False, plot=False, save_interval=100, num_steps_per_env=8)
    runner = OnPolicyRunner(PointMassEnv(num_envs=16), PPOConfig(), cfg, log_dir=tmp_path,
                            device='cpu')
    rows = runner.learn(num_iterations=3)
    first = rows[0]['collection_time_s'] + rows[0]['learn_time_s']
    assert runner.startup_s == pytest.approx(first, rel=0.05, abs=1e-3)
    assert 0.0 < runner.startup_s <= runner.wall_time_s
    runner.learn(num_iterations=2)  # a later chunk of the same process: no new start-up
    assert runner.startup_s == pytest.approx(first, rel=0.05, abs=1e-3)
    saved = runner.save()
    again = OnPolicyRunner(PointMassEnv(num_envs=16), PPOConfig(), cfg, log_dir=tmp_path / 'b',
                           device='cpu')
    again.resume(saved)
    assert again.startup_s == runner.startup_s
    rows = again.learn(num_iterations=1)  # a new process's first iteration adds its own
    assert again.startup_s > runner.startup_s
