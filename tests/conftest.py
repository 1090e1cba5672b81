"""Test-wide configuration: Hypothesis profiles.

``ci`` (the default) runs Hypothesis's usual 100 examples per property without a deadline, since shared CI
machines stall unpredictably; ``dev`` runs 10 examples for a quick edit-test loop. Choose with
``FTS_HYPOTHESIS_PROFILE=dev pytest``.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", deadline=None, print_blob=True)
settings.register_profile("dev", max_examples=10, deadline=None)
settings.load_profile(os.environ.get("FTS_HYPOTHESIS_PROFILE", "ci"))
