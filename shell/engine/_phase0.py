"""Phase 0 against the optimizer the user built: find the mismatch, and rebuild the groups from phase 0.

``configure_optimizers`` (or the user's own loop) builds the phase-0 optimizer after the scheduler froze the model
and thawed phase 0. When it holds other parameters (it thawed another layer itself, or passed every parameter),
FTS's rule applies: re-freeze the model to phase 0 and rebuild the optimizer's groups from phase 0's parameters
(``enforce_phase0_params=True``), or say exactly what will happen when the groups are kept. No Lightning import.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs
import torch
from torch import nn

from ._param_index import param_index
from .torch_helpers import group_names


@attrs.frozen
class Phase0Mismatch:
    """How the optimizer differs from phase 0.

    Attributes:
        expected: the module parameter names of phase 0.
        trainable_in_optimizer: the optimizer's parameters that require gradients.
        frozen_in_optimizer: the optimizer's parameters that do not.
    """

    expected: frozenset[str]
    trainable_in_optimizer: frozenset[str]
    frozen_in_optimizer: tuple[str, ...]

    @property
    def summary(self) -> str:
        """One line: what the optimizer holds against what phase 0 thaws."""
        return (
            f"the optimizer from configure_optimizers holds {len(self.trainable_in_optimizer)} trainable and "
            f"{len(self.frozen_in_optimizer)} frozen parameter(s), but phase 0 thaws {len(self.expected)}"
        )

    @property
    def missing(self) -> list[str]:
        """Phase-0 parameters the optimizer does not train."""
        return sorted(self.expected - self.trainable_in_optimizer)

    @property
    def extra(self) -> list[str]:
        """Trainable parameters in the optimizer that are not in phase 0."""
        return sorted(self.trainable_in_optimizer - self.expected)

    def kept_warning(self) -> str:
        """What will happen when the optimizer is left as it is (``enforce_phase0_params=False``)."""
        lines = [
            f"{self.summary} (enforce_phase0_params=False, so it is left as is).",
            f"Phase-0 parameters that will not be trained in phase 0 (not in the optimizer): {self.missing[:10]}",
            f"Parameters that will be trained in phase 0 although the schedule puts them later: {self.extra[:10]}",
        ]
        if self.frozen_in_optimizer:
            lines.append(
                f"{len(self.frozen_in_optimizer)} parameters in the optimizer do not require a gradient: filter them "
                "with `[p for p in self.parameters() if p.requires_grad]`."
            )
        lines.append("Set enforce_phase0_params=True to rebuild the optimizer from phase 0.")
        return "\n  ".join(lines)


def phase0_mismatch(
    optimizer: torch.optim.Optimizer, module: nn.Module, expected: Iterable[str]
) -> Phase0Mismatch | None:
    """How ``optimizer`` differs from phase 0 (``expected``, module names); ``None`` when it holds exactly phase 0.

    >>> model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    >>> _ = model[0].requires_grad_(False)
    >>> phase0_mismatch(torch.optim.SGD(model[1].parameters(), lr=0.1), model, ["1.weight", "1.bias"]) is None
    True
    >>> phase0_mismatch(torch.optim.SGD(model.parameters(), lr=0.1), model, ["1.weight", "1.bias"]).summary
    'the optimizer from configure_optimizers holds 2 trainable and 2 frozen parameter(s), but phase 0 thaws 2'
    """
    wanted = frozenset(expected)
    if _holds_exactly(optimizer, module, wanted):
        return None
    params = param_index(module).named
    in_optimizer = [name for names in group_names(optimizer, module) for name in names if name in params]
    frozen = tuple(name for name in in_optimizer if not params[name].requires_grad)
    trainable = frozenset(name for name in in_optimizer if params[name].requires_grad)
    if trainable == wanted and not frozen:
        return None
    return Phase0Mismatch(wanted, trainable, frozen)


def _holds_exactly(optimizer: torch.optim.Optimizer, module: nn.Module, wanted: frozenset[str]) -> bool:
    """Whether the optimizer holds exactly the (distinct, trainable) parameters named ``wanted``, found by name
    without walking the whole module: the common case costs the size of phase 0, not of the model."""
    held = [param for group in optimizer.param_groups for param in group["params"]]
    try:
        phase0 = {id(module.get_parameter(name)) for name in wanted}
    except AttributeError:  # not a plain parameter path: the full comparison decides
        return False
    return (
        len(phase0) == len(wanted) == len(held)
        and all(param.requires_grad for param in held)
        and {id(param) for param in held} == phase0
    )


__all__ = ["Phase0Mismatch", "phase0_mismatch"]
