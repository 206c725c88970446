"""The task's prompt functions, importable from the project (the task dir is not a package)."""

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("tr_mmlu_task_utils", Path(__file__).parent / "tasks" / "utils.py")
_utils = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_utils)

doc_to_text = _utils.doc_to_text
doc_to_choice = _utils.doc_to_choice
