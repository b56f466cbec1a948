"""
Typed readers of a contract document's fields; each error names the field's dotted path.

Every reader takes the value and its dotted ``path`` and returns the value checked and
converted, or raises :class:`ContractError` (``<path>: <problem>``).
"""

import math
from typing import Any, Mapping, Optional, Sequence, Tuple

from humanoid_rl_ros.core.contract.facts import ContractError, OFF


def require(mapping: Mapping[str, Any], key: str, path: str) -> Any:
    """Return ``mapping[key]``; ``path`` is the mapping's dotted path (for the errors)."""
    if not isinstance(mapping, Mapping):
        raise ContractError(path, f'expected a mapping, got {type(mapping).__name__}')
    if key not in mapping:
        raise ContractError(f'{path}.{key}' if path else key, 'missing required field')
    return mapping[key]


def number(value: Any, path: str, *, positive: bool = False, nonneg: bool = False) -> float:
    """Return ``value`` as a finite float (``positive``: > 0, ``nonneg``: >= 0)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ContractError(path, f'expected a number, got {value!r}')
    value = float(value)
    if not math.isfinite(value):
        raise ContractError(path, f'expected a finite number, got {value}')
    if positive and value <= 0.0:
        raise ContractError(path, f'must be > 0, got {value}')
    if nonneg and value < 0.0:
        raise ContractError(path, f'must be >= 0, got {value}')
    return value


def integer(value: Any, path: str, minimum: int = 1) -> int:
    """Return ``value`` as an integer >= ``minimum`` (a bool is refused)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ContractError(path, f'expected an integer, got {value!r}')
    if value < minimum:
        raise ContractError(path, f'must be >= {minimum}, got {value}')
    return value


def string(value: Any, path: str) -> str:
    """Return ``value`` as a non-empty string."""
    if not isinstance(value, str) or not value:
        raise ContractError(path, f'expected a non-empty string, got {value!r}')
    return value


def vector(value: Any, path: str, size: int, **kw: bool) -> Tuple[float, ...]:
    """Return ``size`` numbers (a scalar is broadcast); ``kw`` as for :func:`number`."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value] * size
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise ContractError(path, f'expected a list of {size} numbers, got {value!r}')
    if len(value) != size:
        raise ContractError(path, f'expected {size} values (one per entry), got {len(value)}')
    return tuple(number(v, f'{path}[{i}]', **kw) for i, v in enumerate(value))


def value_range(value: Any, path: str, **kw: bool) -> Tuple[float, float]:
    """Return ``[low, high]`` with low <= high; ``kw`` as for :func:`number`."""
    low, high = vector(value, path, 2, **kw)
    if low > high:
        raise ContractError(path, f'range low {low} is above high {high}')
    return (low, high)


def optional_vector(value: Any, path: str, size: int, **kw: bool) -> Optional[Tuple[float, ...]]:
    """Return :func:`vector`, or None for ``null`` (unknown)."""
    return None if value is None else vector(value, path, size, **kw)


def off_or_range(value: Any, path: str) -> Optional[Tuple[float, float]]:
    """Return :func:`value_range`, or None for ``'off'`` (switched off)."""
    return None if value == OFF else value_range(value, path)


def mapping(value: Any, path: str) -> Mapping[str, Any]:
    """Return ``value`` if it is a mapping."""
    if not isinstance(value, Mapping):
        raise ContractError(path, f'expected a mapping, got {value!r}')
    return value


def int_range(value: Any, path: str) -> Tuple[int, int]:
    """Return ``[low, high]`` of integers with 0 <= low <= high."""
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 2:
        raise ContractError(path, f'expected [low, high], got {value!r}')
    low = integer(value[0], f'{path}[0]', minimum=0)
    high = integer(value[1], f'{path}[1]', minimum=0)
    if low > high:
        raise ContractError(path, f'range low {low} is above high {high}')
    return (low, high)
