"""Who runs the pipeline: in-process (embedded) now; procrastinate workers in production."""
