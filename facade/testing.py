"""Hypothesis strategies for property-testing fine-tuning schedules (needs ``pip install hypothesis``).

>>> from finetuning_scheduler.testing import inventory_and_schedule
>>> from hypothesis import given, settings
>>> from finetuning_scheduler.core import validate
>>> @given(inventory_and_schedule())
... @settings(max_examples=20)
... def test_valid_by_construction(pair):
...     inventory, schedule = pair
...     assert validate(schedule, inventory).unwrap().unscheduled == ()
>>> test_valid_by_construction()
"""

from finetuning_scheduler.shell.testing import (
    class_inits,
    dotted_names,
    inventories,
    inventory_and_schedule,
    param_names,
    phases,
    schedules,
    schedules_for,
    schedules_over,
    yaml_values,
)

__all__ = [
    "class_inits",
    "dotted_names",
    "inventories",
    "inventory_and_schedule",
    "param_names",
    "phases",
    "schedules",
    "schedules_for",
    "schedules_over",
    "yaml_values",
]
