"""Pure domain model: statuses and transitions, batches, dataset schemas, errors.

Nothing here imports the rest of batchyard, SQLAlchemy, FastAPI or pyarrow.
"""
