"""Moved: slice loading is :mod:`mama_monai.data.case_slices`, the split policy
:mod:`mama_monai.workflows.splits`. Kept for one release so that old imports keep working."""

from mama_monai.data.case_slices import *  # noqa: F401,F403
from mama_monai.data.case_slices import MAX_AUTO_WORKERS, CaseFailure, auto_num_workers, check_num_workers  # noqa: F401
from mama_monai.data.case_slices import _keep_freed_memory, load_case_slices, simulated_anomalies  # noqa: F401
from mama_monai.workflows.splits import load_test_split, prepare_splits  # noqa: F401
