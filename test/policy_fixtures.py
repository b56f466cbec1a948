"""
Randomly initialized policies (ONNX + contract) for the policy node's tests.

``make_random_policy`` uses the real exporter, ``training.export.export_random_policy``
(torch actor + baked-in normalizer), when ``training`` and torch import; otherwise (e.g. an
installed package without the training tree) it writes a small random MLP with ``onnx.helper``.
Either way the contract is built from the Kestrel robot config. ``make_mismatched_policy``
writes an ONNX whose width disagrees with its contract on purpose.
"""

import dataclasses
from pathlib import Path
from typing import Optional

from humanoid_rl_ros.core.contract import (CommandRanges, placeholder_contract, PolicyContract,
                                           write_contract)
from humanoid_rl_ros.robot.description import load_robot
import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto


def kestrel_contract(onnx_file: str = 'policy.onnx') -> PolicyContract:
    """Return a contract for Kestrel with every observation term and a gait clock."""
    return dataclasses.replace(
        placeholder_contract(load_robot('kestrel'), onnx_file=onnx_file),
        commands=CommandRanges(lin_vel_x_m_s=(-0.5, 1.0), lin_vel_y_m_s=(-0.3, 0.3),
                               ang_vel_z_rad_s=(-1.0, 1.0)))


def write_mlp_onnx(path: Path, obs_dim: int, action_dim: int, seed: int = 0,
                   input_name: str = 'obs', output_name: str = 'actions') -> Path:
    """Write a random 2-layer tanh MLP ``[batch, obs_dim] -> [batch, action_dim]`` as ONNX."""
    rng = np.random.default_rng(seed)
    hidden = 32
    w1 = (rng.standard_normal((obs_dim, hidden)) / np.sqrt(obs_dim)).astype(np.float32)
    b1 = (0.1 * rng.standard_normal(hidden)).astype(np.float32)
    w2 = (0.5 * rng.standard_normal((hidden, action_dim)) / np.sqrt(hidden)).astype(np.float32)
    b2 = (0.1 * rng.standard_normal(action_dim)).astype(np.float32)
    nodes = [
        helper.make_node('Gemm', [input_name, 'w1', 'b1'], ['h_pre']),
        helper.make_node('Tanh', ['h_pre'], ['h']),
        helper.make_node('Gemm', ['h', 'w2', 'b2'], [output_name]),
    ]
    graph = helper.make_graph(
        nodes, 'random_policy',
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ['batch', obs_dim])],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, ['batch', action_dim])],
        initializer=[numpy_helper.from_array(w1, 'w1'), numpy_helper.from_array(b1, 'b1'),
                     numpy_helper.from_array(w2, 'w2'), numpy_helper.from_array(b2, 'b2')])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def make_random_policy(folder: Path, name: str = 'random_policy', seed: int = 0) -> Path:
    """Write ``<folder>/<name>.yaml`` + ``.onnx`` (random weights); return the contract path."""
    folder = Path(folder)
    contract = kestrel_contract(onnx_file=f'{name}.onnx')
    try:
        from training.export import export_random_policy
    except ImportError:
        export_random_policy = None
    if export_random_policy is not None:
        return Path(export_random_policy(contract, folder, name, seed=seed)[1])
    write_mlp_onnx(folder / f'{name}.onnx', contract.obs_dim, contract.action_dim, seed)
    return write_contract(contract, folder / f'{name}.yaml')


def make_mismatched_policy(folder: Path, obs_dim: Optional[int] = None,
                           action_dim: Optional[int] = None) -> Path:
    """Write a contract whose ONNX has the wrong input or output width; return the contract."""
    contract = kestrel_contract(onnx_file='mismatch.onnx')
    write_mlp_onnx(Path(folder) / 'mismatch.onnx', obs_dim or contract.obs_dim,
                   action_dim or contract.action_dim)
    return write_contract(contract, Path(folder) / 'mismatch.yaml')
