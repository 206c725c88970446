"""The tasks' prompt functions, importable from the project (the task dir is not a package)."""

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("tr_mmlu_task_utils", Path(__file__).parent / "tasks" / "utils.py")
_utils = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_utils)

LETTERS = _utils.LETTERS
prompt = _utils.prompt
doc_to_text = _utils.doc_to_text
doc_to_choice = _utils.doc_to_choice
turkishmmlu_doc_to_text = _utils.turkishmmlu_doc_to_text
turkishmmlu_doc_to_choice = _utils.turkishmmlu_doc_to_choice
turkishmmlu_doc_to_target = _utils.turkishmmlu_doc_to_target
