"""The command line's one model loader: ``module:callable`` (with ``--init-args``) or a LightningCLI config.

Models are built on the meta device: parameters get names, shapes and dtypes but no memory, so a schedule for a
model of billions of parameters is checked in seconds with no weights loaded.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn


class UsageError(Exception):
    """A bad argument, or a model that cannot be built: the command prints the message (no traceback), exit 2."""


def _import_object(reference: str) -> Any:
    """``package.module:attr`` or ``package.module.attr``; the working directory is importable, as for ``python -m``."""
    module_name, colon, attribute = reference.partition(":")
    if not colon:
        module_name, _, attribute = reference.rpartition(".")
    if not module_name or not attribute:
        raise UsageError(f"--model {reference!r}: expected module:callable (or module.callable)")
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # an import can fail in any way; the user needs the reason, not our traceback
        raise UsageError(
            f"cannot import module {module_name!r} for {reference!r}: {type(exc).__name__}: {exc}"
        ) from exc
    found: Any = module
    for part in attribute.split("."):
        if not hasattr(found, part):
            raise UsageError(f"module {module_name!r} has no attribute {attribute!r} (from {reference!r})")
        found = getattr(found, part)
    return found


def parse_init_args(text: str | None) -> dict[str, Any]:
    """``--init-args`` as keyword arguments: a JSON object.

    >>> parse_init_args('{"width": 64}')
    {'width': 64}
    >>> parse_init_args("[1]")
    Traceback (most recent call last):
    ...
    finetuning_scheduler.shell.app._models.UsageError: --init-args must be a JSON object (keyword arguments), got list
    """
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"--init-args is not valid JSON: {exc.msg} at column {exc.colno}") from exc
    if not isinstance(value, dict):
        raise UsageError(f"--init-args must be a JSON object (keyword arguments), got {type(value).__name__}")
    return value


def _config_model_section(config: Path) -> tuple[str | None, dict[str, Any]]:
    """The ``model:`` section of a LightningCLI config: ``class_path`` and ``init_args``, or bare init args."""
    try:
        document = yaml.safe_load(config.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read --config {str(config)!r}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise UsageError(f"--config {str(config)!r} is not valid YAML: {exc}") from exc
    section = document.get("model") if isinstance(document, Mapping) else None
    if not isinstance(section, Mapping):
        raise UsageError(f"--config {str(config)!r} has no `model:` section")
    if "class_path" in section:
        init_args = section.get("init_args") or {}
        if not isinstance(init_args, Mapping):
            raise UsageError(f"--config {str(config)!r}: model.init_args must be a mapping")
        return str(section["class_path"]), dict(init_args)
    return None, dict(section)


def _build(factory: Callable[..., Any], kwargs: Mapping[str, Any], what: str) -> nn.Module:
    try:
        with torch.device("meta"):
            model = factory(**kwargs)
    except Exception as exc:  # the user's constructor: report what it said, as a usage error
        raise UsageError(f"building {what} failed: {type(exc).__name__}: {exc}") from exc
    if not isinstance(model, nn.Module):
        raise UsageError(f"{what} returned {type(model).__name__}, not a torch.nn.Module")
    return model


def load_model(
    reference: str | None,
    init_args: str | None = None,
    config: Path | None = None,
    say: Callable[[str], None] = lambda _: None,
) -> nn.Module:
    """Build the model named by ``--model`` and/or ``--config`` on the meta device.

    ``--model`` alone: ``module:callable`` called with ``--init-args``. ``--config``: the LightningCLI config's
    ``model:`` section gives the class (``class_path``) and its ``init_args``; ``--model`` gives the class when the
    section has no ``class_path``; ``--init-args`` update the config's.
    """
    class_path, kwargs = _config_model_section(config) if config is not None else (None, {})
    kwargs.update(parse_init_args(init_args))
    chosen = reference or class_path
    if chosen is None:
        raise UsageError("give the model: --model module:callable, or --config with a model.class_path")
    factory = _import_object(chosen)
    if not callable(factory):
        raise UsageError(f"{chosen!r} is not callable")
    say(f"building {chosen} on the meta device (no weights are allocated)...")
    return _build(factory, kwargs, chosen)


def add_model_arguments(parser: Any) -> None:
    """``--model``, ``--init-args`` and ``--config``, as every model-reading command takes them."""
    parser.add_argument("--model", metavar="REF", help="the model: module:callable (a class or a factory)")
    parser.add_argument("--init-args", metavar="JSON", help="keyword arguments for the model, e.g. '{\"width\": 64}'")
    parser.add_argument("--config", type=Path, metavar="CFG", help="a LightningCLI config: its model: section")


def model_from_args(args: Any, say: Callable[[str], None]) -> nn.Module:
    """The model the command-line arguments name (see :func:`load_model`)."""
    return load_model(args.model, args.init_args, args.config, say)


__all__ = ["UsageError", "add_model_arguments", "load_model", "model_from_args", "parse_init_args"]
