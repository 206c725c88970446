"""TR-MMLU evaluation with lm-evaluation-harness: questions, the shipped task, the evaluator
process (launched through Dagster Pipes) and the contamination guard."""
