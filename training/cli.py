"""
Build nested typed dataclass configs from defaults, a YAML file and ``--set`` overrides.

Overrides use dotted keys into the nested dataclasses, one ``KEY=VALUE`` per item::

    --set ppo.learning_rate=3e-4 env.rewards.track_lin_vel=2.0
          runner.policy.actor_hidden_dims=[256,128]

Each value is parsed as YAML and checked against the field's annotated type (``int``, ``float``,
``bool``, ``str``, ``Path``, ``Optional``, ``Literal``, ``Tuple``/``List``/``Dict`` and nested
dataclasses).  ``Dict`` fields are entered by key (``env.observation.noise.joint_vel=1.0``).  An
unknown key or a value of the wrong type raises :class:`ConfigError` naming the key.  New
objects are built with ``dataclasses.replace``, so each dataclass's ``__post_init__`` validation
runs again on the overridden values; frozen dataclasses work too.

The resolved config is written to / read from YAML with :func:`dump_config` / :func:`load_config`.
"""

import argparse
import ast
import dataclasses
import inspect
import math
from pathlib import Path
import textwrap
import typing
from typing import Any, Dict, List, Sequence, Tuple, Type, TypeVar, Union

from humanoid_rl_ros.core.contract import plain_data
import yaml

T = TypeVar('T')

_NONE = type(None)


class ConfigError(ValueError):
    """A config key or value is invalid; the message starts with the dotted key."""


def _hints(cls: type) -> Dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # noqa: B902 - unresolvable forward refs: fall back to raw annotations
        return {f.name: f.type for f in dataclasses.fields(cls)}


def _type_name(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace('typing.', '')


def _coerce(value: Any, tp: Any, key: str, raw: Any = None) -> Any:
    """Check/convert parsed ``value`` to type ``tp``; ``raw`` is the unparsed text if any."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any or tp is object:
        return value
    if origin is Union:
        if value is None and _NONE in args:
            return None
        for arm in args:
            if arm is _NONE:
                continue
            try:
                return _coerce(value, arm, key, raw)
            except ConfigError:
                pass
        raise ConfigError(f'{key}: expected {_type_name(tp)}, got {value!r}')
    if origin is typing.Literal:
        if value in args:
            return value
        if raw is not None and raw in args:
            return raw
        raise ConfigError(f'{key}: expected one of {list(args)}, got {value!r}')
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f'{key}: expected a mapping for {tp.__name__}, got {value!r}')
        return merge_dict(tp(), value, key)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f'{key}: expected a bool (true/false), got {value!r}')
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        raise ConfigError(f'{key}: expected an int, got {value!r}')
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out = float(value)
        elif isinstance(value, str):
            # PyYAML reads '3e-4' (no dot) as a string: accept it here.
            try:
                out = float(value)
            except ValueError:
                raise ConfigError(f'{key}: expected a float, got {value!r}') from None
        else:
            raise ConfigError(f'{key}: expected a float, got {value!r}')
        if math.isnan(out):
            raise ConfigError(f'{key}: NaN is not a valid value')
        return out
    if tp is str:
        if isinstance(value, str):
            return value
        if raw is not None:
            return raw
        raise ConfigError(f'{key}: expected a string, got {value!r}')
    if tp is Path or (isinstance(tp, type) and issubclass(tp, Path)):
        if isinstance(value, (str, Path)):
            return Path(value)
        if raw is not None:
            return Path(raw)
        raise ConfigError(f'{key}: expected a path, got {value!r}')
    if origin in (tuple, list, Sequence, typing.Sequence) or tp in (tuple, list):
        if isinstance(value, str):
            # 'a,b,c' without brackets: split on commas and parse each item.
            value = [yaml.safe_load(s.strip()) for s in value.split(',')] if value.strip() else []
        fixed = origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis)
        if not isinstance(value, (list, tuple, dict)) and value is not None and not fixed:
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f'{key}: expected a list, got {value!r}')
        if fixed:
            if len(value) != len(args):
                raise ConfigError(f'{key}: expected {len(args)} values, got {len(value)}')
            return tuple(_coerce(v, a, f'{key}[{i}]') for i, (v, a) in
                         enumerate(zip(value, args)))
        item = args[0] if args else Any
        items = [_coerce(v, item, f'{key}[{i}]') for i, v in enumerate(value)]
        return list(items) if origin is list or tp is list else tuple(items)
    if origin in (dict, typing.Mapping) or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f'{key}: expected a mapping, got {value!r}')
        ktp, vtp = args if args else (Any, Any)
        return {_coerce(k, ktp, f'{key}.<key>'): _coerce(v, vtp, f'{key}.{k}')
                for k, v in value.items()}
    if isinstance(tp, type):
        if isinstance(value, tp):
            return value
        raise ConfigError(f'{key}: expected {tp.__name__}, got {value!r}')
    return value


def _field_names(obj: Any) -> List[str]:
    return [f.name for f in dataclasses.fields(obj) if f.init]


def _unknown(key: str, name: str, known: Sequence[str]) -> ConfigError:
    return ConfigError(f'{key}: unknown key {name!r}; valid keys here are: '
                       f'{", ".join(sorted(known))}')


def _set_path(obj: Any, tp: Any, segments: List[str], value: Any, raw: Any, key: str) -> Any:
    """Return a copy of ``obj`` (of type ``tp``) with the value at ``segments`` replaced."""
    if not segments:
        return _coerce(value, tp, key, raw)
    head, rest = segments[0], segments[1:]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        names = _field_names(obj)
        if head not in names:
            raise _unknown(key, head, names)
        ftp = _hints(type(obj)).get(head, Any)
        new = _set_path(getattr(obj, head), ftp, rest, value, raw, key)
        try:
            return dataclasses.replace(obj, **{head: new})
        except ConfigError:
            raise
        except (ValueError, TypeError) as exc:
            raise ConfigError(f'{key}: rejected by {type(obj).__name__}: {exc}') from exc
    if isinstance(obj, dict):
        if head not in obj:
            raise _unknown(key, head, [str(k) for k in obj])
        args = typing.get_args(tp)
        vtp = args[1] if len(args) == 2 else Any
        out = dict(obj)
        out[head] = _set_path(obj[head], vtp, rest, value, raw, key)
        return out
    parts = key.split('.')
    parent = '.'.join(parts[:len(parts) - len(segments)])
    raise ConfigError(f'{key}: {parent!r} holds a {type(obj).__name__} value, not a section; '
                      f'it has no sub-key {head!r}')


def parse_override(text: str) -> Tuple[str, str]:
    """Split ``'a.b.c=value'`` into ``('a.b.c', 'value')``."""
    if '=' not in text:
        raise ConfigError(f'{text}: override must look like KEY=VALUE (e.g. ppo.gamma=0.98)')
    key, raw = text.split('=', 1)
    key = key.strip()
    if not key or any(not s for s in key.split('.')):
        raise ConfigError(f'{text}: empty key in override')
    return key, raw.strip()


def apply_overrides(cfg: T, overrides: Sequence[str]) -> T:
    """Return a copy of dataclass ``cfg`` with each ``KEY=VALUE`` override applied in order."""
    for text in overrides:
        key, raw = parse_override(text)
        try:
            value = yaml.safe_load(raw) if raw != '' else ''
        except yaml.YAMLError:
            value = raw
        cfg = _set_path(cfg, type(cfg), key.split('.'), value, raw, key)
    return cfg


def merge_dict(cfg: T, data: Dict[str, Any], prefix: str = '') -> T:
    """Return a copy of dataclass ``cfg`` with the (nested) values of ``data`` applied."""
    if not isinstance(data, dict):
        raise ConfigError(f'{prefix or "<root>"}: expected a mapping, got {data!r}')
    hints = _hints(type(cfg))
    names = _field_names(cfg)
    changes = {}
    for name, value in data.items():
        key = f'{prefix}.{name}' if prefix else str(name)
        if name not in names:
            raise _unknown(key, str(name), names)
        current = getattr(cfg, name)
        if dataclasses.is_dataclass(current) and isinstance(value, dict):
            changes[name] = merge_dict(current, value, key)
        else:
            changes[name] = _coerce(value, hints.get(name, Any), key)
    try:
        return dataclasses.replace(cfg, **changes)
    except ConfigError:
        raise
    except (ValueError, TypeError) as exc:
        where = prefix or '<root>'
        raise ConfigError(f'{where}: rejected by {type(cfg).__name__}: {exc}') from exc


def config_to_dict(cfg: Any) -> Any:
    """Return plain YAML-safe data (dicts, lists, scalars) for a (nested) dataclass config."""
    return plain_data(cfg)


def dump_config(cfg: Any, path: Union[str, Path]) -> Path:
    """Write the resolved config as YAML to ``path``; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False, width=100))
    return path


def load_config(cls_or_default: Union[Type[T], T], path: Union[str, Path]) -> T:
    """Read a YAML config over the defaults of ``cls_or_default`` (a class or an instance)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f'<file>: no config file at {path}')
    data = yaml.safe_load(path.read_text()) or {}
    base = cls_or_default() if isinstance(cls_or_default, type) else cls_or_default
    return merge_dict(base, data)


def build_config(cls_or_default: Union[Type[T], T], overrides: Sequence[str] = (),
                 config_file: Union[str, Path, None] = None) -> T:
    """Resolve a config: defaults, then ``config_file`` (YAML) if given, then ``overrides``."""
    cfg = cls_or_default() if isinstance(cls_or_default, type) else cls_or_default
    if config_file is not None:
        cfg = load_config(cfg, config_file)
    return apply_overrides(cfg, overrides)


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--set KEY=VALUE ...`` (repeatable) and ``--config FILE.yaml`` to ``parser``."""
    parser.add_argument('--set', dest='overrides', nargs='+', action='extend', default=[],
                        metavar='KEY=VALUE',
                        help='override config fields, e.g. --set ppo.learning_rate=3e-4 '
                             'env.rewards.track_lin_vel=2.0')
    parser.add_argument('--config', dest='config_file', default=None, metavar='FILE.yaml',
                        help='YAML config applied over the defaults, before --set overrides')


def field_docs(cls: type) -> Dict[str, str]:
    """Return ``{field: docstring}`` from the string literals under each dataclass field."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    body = ast.parse(source).body[0].body
    docs = {}
    for node, nxt in zip(body, body[1:]):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
                and isinstance(nxt.value.value, str)):
            docs[node.target.id] = ' '.join(nxt.value.value.split())
    return docs


def describe_config(cfg: Any, prefix: str = '') -> List[str]:
    """Return one ``key = value  # doc`` line per leaf field of a (nested) dataclass config."""
    lines = []
    docs = field_docs(type(cfg))
    for f in dataclasses.fields(cfg):
        key = f'{prefix}{f.name}'
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            lines.extend(describe_config(value, key + '.'))
        else:
            doc = docs.get(f.name, '')
            text = yaml.safe_dump(config_to_dict(value), default_flow_style=True).strip()
            text = text[:-4].strip() if text.endswith('\n...') or text.endswith(' ...') else text
            lines.append(f'{key} = {text}' + (f'  # {doc}' if doc else ''))
    return lines
