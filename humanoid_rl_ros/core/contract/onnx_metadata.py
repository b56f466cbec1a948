"""
The contract's two copies: the ONNX file's metadata and the YAML file, and their comparison.

:func:`onnx_metadata` reads an ONNX file's ``metadata_props`` (with the ``onnx`` package, else
onnxruntime); :func:`embedded_contract_document` parses the contract stored under
:data:`ONNX_METADATA_KEY`; :func:`graph_sha256` identifies a policy by its graph and weights
(the metadata left out); :func:`contract_difference` names the first field where two
contracts differ, as written (formatting does not count).  The exporter
(``training.export.embed_contract``) writes the metadata.
"""

import hashlib
import math
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple, Union

from humanoid_rl_ros.core.contract.document import contract_to_dict
from humanoid_rl_ros.core.contract.facts import ContractError, ONNX_METADATA_KEY
from humanoid_rl_ros.core.contract.parse import contract_from_dict
from humanoid_rl_ros.core.contract.schema import PolicyContract
import yaml


def parse_yaml(text: str, source: Union[str, Path]) -> Any:
    """Return the parsed YAML ``text``; raise :class:`ContractError` naming ``source``."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ContractError('<file>', f'{source} is not valid YAML: {exc}') from exc


def onnx_metadata(onnx_path: Union[str, Path]) -> Dict[str, str]:
    """
    Return the ``metadata_props`` of an ONNX file as a dict.

    Read with the ``onnx`` package where installed, else through onnxruntime. Raise
    :class:`ContractError` for a file that is not a readable ONNX model.
    """
    onnx_path = Path(onnx_path)
    try:
        try:
            import onnx
        except ImportError:  # pragma: no cover - a deployment with onnxruntime only
            import onnxruntime
            session = onnxruntime.InferenceSession(str(onnx_path),
                                                   providers=['CPUExecutionProvider'])
            return dict(session.get_modelmeta().custom_metadata_map)
        model = onnx.load(str(onnx_path), load_external_data=False)
    except Exception as exc:  # noqa: B902 - protobuf and onnxruntime raise unrelated types
        raise ContractError('<file>', f'{onnx_path} is not a readable ONNX model: {exc}') from exc
    return {prop.key: prop.value for prop in model.metadata_props}


def graph_sha256(onnx_model: Union[bytes, str, Path]) -> str:
    """
    Return the SHA-256 of an ONNX model's serialized graph (file path or file bytes).

    The graph holds the weights, not the metadata, so a contract rewritten into the file (or a
    copy under another name) keeps the hash. Needs the ``onnx`` package.
    """
    import onnx
    model = (onnx.load_from_string(onnx_model) if isinstance(onnx_model, bytes)
             else onnx.load(str(onnx_model)))
    return hashlib.sha256(model.graph.SerializeToString()).hexdigest()


def embedded_contract_document(onnx_path: Union[str, Path]) -> Optional[Any]:
    """Return the parsed contract embedded in an ONNX file, or None if it carries none."""
    text = onnx_metadata(onnx_path).get(ONNX_METADATA_KEY)
    if text is None:
        return None
    return parse_yaml(text, f'the contract embedded in {onnx_path}')


def _first_difference(a: Any, b: Any, path: str = '') -> Optional[Tuple[str, Any, Any]]:
    """Return ``(dotted path, a's value, b's value)`` of the first difference, or None."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        for key in list(a) + [k for k in b if k not in a]:
            sub = f'{path}.{key}' if path else str(key)
            if key not in a or key not in b:
                return sub, a.get(key, '<absent>'), b.get(key, '<absent>')
            found = _first_difference(a[key], b[key], sub)
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            found = _first_difference(x, y, f'{path}[{i}]')
            if found:
                return found
        return None
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return None  # a NaN metric (e.g. no finished episode) equals itself here
    return None if a == b else (path or '<root>', a, b)


def contract_difference(a: Union[PolicyContract, Mapping[str, Any]],
                        b: Union[PolicyContract, Mapping[str, Any]]) -> Optional[str]:
    """
    Return where two contracts (objects or parsed documents) differ, or None if they agree.

    Both are validated and compared as written (format 2), so formatting does not count.
    """
    docs = [contract_to_dict(c if isinstance(c, PolicyContract) else contract_from_dict(c))
            for c in (a, b)]
    found = _first_difference(*docs)
    if found is None:
        return None
    where, left, right = found
    return f'{where}: {_short(left)} against {_short(right)}'


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + '...'


def mismatch_error(yaml_path: Path, onnx_path: Path, difference: str) -> ContractError:
    """Return the error for a YAML copy that differs from its ONNX's embedded contract."""
    return ContractError('<file>', (
        f'{yaml_path} and the contract embedded in {onnx_path} differ (the YAML first) at '
        f'{difference}. The ONNX carries the contract it was exported with: rewrite the YAML '
        f'from it with "python -m training.export extract {onnx_path}", or re-export the '
        'policy'))
