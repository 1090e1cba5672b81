"""The imperative shell: applies the core's decisions to torch modules, optimizers, Lightning and files.

Its packages are its layers; each imports only the ones below it (import-linter contracts in ``pyproject.toml``):

- ``app``: the demo and the command line (``python -m finetuning_scheduler``); nothing imports it.
- ``lightning``: the Lightning callbacks and the ``StrategyAdapter`` base.
- ``integrations``: other trainers (the driver for hand-written loops, the Hugging Face callback); no Lightning.
- ``plugins``: strategy-adapter entry points discovered as data, then the selected class loaded.
- ``engine``: the phase engine, the torch helpers and schedule files; torch and the core only, never Lightning.
- ``testing``: Hypothesis strategies for property-testing schedules (``finetuning_scheduler.testing``).

The modules ``driver``, ``hf``, ``torch_helpers``, ``schedule_files``, ``demo`` and ``_naming`` directly in this
package are the former paths of ``integrations.driver``, ``integrations.hf``, ``engine.torch_helpers``,
``engine.schedule_files``, ``app.demo`` and ``lightning._naming``, kept so existing imports work.
"""
