"""The pure core: schedules, validation, generation and phase planning as functions over immutable records.

Imports only the standard library, attrs, cattrs, returns and PyYAML; never torch or Lightning, and does no I/O.
"""

from ._convert import make_converter
from ._diagnostics import (
    Diagnostic,
    Diagnostics,
    Location,
    Position,
    Severity,
    error,
    errors_only,
    render_all,
    warning,
    warnings_only,
)
from ._generate import GenerationPolicy, block_of, generate
from ._pipeline import resolve_schedule, resolve_yaml
from ._records import (
    ClassInit,
    LRSchedulerInit,
    OptimizerInit,
    ParamInventory,
    Phase,
    ResolvedPhase,
    ResolvedSchedule,
    Schedule,
    SourceMap,
    UnscheduledPolicy,
    ValidationOptions,
)
from ._structure import PHASE_KEYS, structure_leniently, structure_schedule
from ._transition import (
    FitState,
    GroupPlan,
    Plan,
    Reason,
    Signals,
    Transition,
    depth_remaining,
    effective_max_epochs,
    next_transition,
    resume_plan,
    transition_plan,
)
from ._validate import validate
from ._yaml import RawSchedule, dump_schedule, parse_yaml, schedule_to_data

__all__ = [
    "PHASE_KEYS",
    "ClassInit",
    "Diagnostic",
    "Diagnostics",
    "FitState",
    "GenerationPolicy",
    "GroupPlan",
    "LRSchedulerInit",
    "Location",
    "OptimizerInit",
    "ParamInventory",
    "Phase",
    "Plan",
    "Position",
    "RawSchedule",
    "Reason",
    "ResolvedPhase",
    "ResolvedSchedule",
    "Schedule",
    "Severity",
    "Signals",
    "SourceMap",
    "Transition",
    "UnscheduledPolicy",
    "ValidationOptions",
    "block_of",
    "depth_remaining",
    "dump_schedule",
    "effective_max_epochs",
    "error",
    "errors_only",
    "generate",
    "make_converter",
    "next_transition",
    "parse_yaml",
    "render_all",
    "resolve_schedule",
    "resolve_yaml",
    "resume_plan",
    "schedule_to_data",
    "structure_leniently",
    "structure_schedule",
    "transition_plan",
    "validate",
    "warning",
    "warnings_only",
]
