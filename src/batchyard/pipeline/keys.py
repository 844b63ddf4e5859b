"""Where a batch's objects live in blob storage: one place, so delete can find them all."""

from __future__ import annotations


def batch_prefix(batch_id: str) -> str:
    return f"batches/{batch_id}"


def input_key(batch_id: str, source_index: int) -> str:
    return f"batches/{batch_id}/input/{source_index}"


def chunk_key(batch_id: str, chunk_index: int) -> str:
    return f"batches/{batch_id}/chunks/{chunk_index}.arrow"


def errors_key(batch_id: str, chunk_index: int) -> str:
    return f"batches/{batch_id}/errors/{chunk_index}.arrow"


def chunking_key(batch_id: str) -> str:
    """The chunk size a batch's validation uses, fixed by its first validation run."""
    return f"{batch_prefix(batch_id)}/staged/chunking.json"


def staged_prefixes(batch_id: str) -> tuple[str, ...]:
    """What validation stages for processing and the results: of no use once the batch ended."""
    prefix = batch_prefix(batch_id)
    return (f"{prefix}/chunks", f"{prefix}/errors", f"{prefix}/staged")


def partial_manifest_key(batch_id: str) -> str:
    """The chunks staged by a validation that stopped part way (for that batch's results)."""
    return f"{batch_prefix(batch_id)}/staged/partial-manifest.json"


def results_part_key(batch_id: str, chunk_index: int) -> str:
    """A chunk's part of the results files, written as the chunk commits (staged: the results
    files are made of the parts once the batch ends)."""
    return f"{batch_prefix(batch_id)}/staged/results/{chunk_index}.part"


def manifest_key(batch_id: str) -> str:
    return f"batches/{batch_id}/manifest.json"


def results_key(batch_id: str) -> str:
    return f"batches/{batch_id}/results.csv"


def failed_records_key(batch_id: str) -> str:
    return f"batches/{batch_id}/failed-records.csv"


def results_summary_key(batch_id: str) -> str:
    """How many records the results name per outcome; written last, so its presence says the
    results files are complete."""
    return f"batches/{batch_id}/results-summary.json"
