"""The phase engine and the torch helpers it applies decisions with: torch and the pure core, never Lightning.

Every trainer integration (the Lightning callback, the driver for other loops) runs its fit through one
:class:`PhaseEngine`; the torch helpers and schedule files are usable on their own too.
"""

from ._arguments import (
    BOOL,
    CLASS_PREFIXES,
    OPTIONAL_BOOL,
    OPTIONAL_PATH,
    OPTIONAL_STR,
    PATH,
    STR,
    Accepts,
    ArgumentError,
    argument_problems,
    check_arguments,
    integer,
    number,
    one_of,
    optional_mapping,
    positive_number,
)
from ._engine import STATE_FORMAT, GroupPolicy, NoDecay, PhaseEngine, Replaced, RestoreBest
from ._errors import CheckpointMismatchError, CheckpointReadError, ScheduleError, ScheduleWarning, value_or_raise
from ._gc import collector_paused
from ._lr_schedulers import SUPPORTED_LR_SCHEDULERS, extend_scheduler_state, unsupported_scheduler
from ._param_index import ParamIndex, forget, one_walk, param_index
from ._phase0 import Phase0Mismatch, phase0_mismatch
from ._records import EpochTrace, PhaseChange
from ._reinit import (
    ReinitError,
    import_class,
    raw_reinit_problems,
    reinit_problems,
)
from .schedule_files import read_schedule, schedule_file_name, write_schedule, write_text_atomically
from .torch_helpers import (
    add_param_groups,
    freeze,
    group_names,
    inventory,
    materialize_optimizer_state,
    optimizer_problems,
    thaw,
    track_bn_running_stats,
    trainable_counts,
    trainable_names,
    truncate_param_groups,
)

__all__ = [
    "BOOL",
    "CLASS_PREFIXES",
    "OPTIONAL_BOOL",
    "OPTIONAL_PATH",
    "OPTIONAL_STR",
    "PATH",
    "STATE_FORMAT",
    "STR",
    "SUPPORTED_LR_SCHEDULERS",
    "Accepts",
    "ArgumentError",
    "CheckpointMismatchError",
    "CheckpointReadError",
    "EpochTrace",
    "GroupPolicy",
    "NoDecay",
    "ParamIndex",
    "Phase0Mismatch",
    "PhaseChange",
    "PhaseEngine",
    "ReinitError",
    "Replaced",
    "RestoreBest",
    "ScheduleError",
    "ScheduleWarning",
    "add_param_groups",
    "argument_problems",
    "check_arguments",
    "collector_paused",
    "extend_scheduler_state",
    "forget",
    "freeze",
    "group_names",
    "import_class",
    "integer",
    "inventory",
    "materialize_optimizer_state",
    "number",
    "one_of",
    "one_walk",
    "optimizer_problems",
    "optional_mapping",
    "param_index",
    "phase0_mismatch",
    "positive_number",
    "raw_reinit_problems",
    "read_schedule",
    "reinit_problems",
    "schedule_file_name",
    "thaw",
    "track_bn_running_stats",
    "trainable_counts",
    "trainable_names",
    "truncate_param_groups",
    "unsupported_scheduler",
    "value_or_raise",
    "write_schedule",
    "write_text_atomically",
]
