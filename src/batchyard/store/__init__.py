"""The metadata database: users, tokens, datasets, batches, their history and logs.

The batches table is the source of truth for where every batch is. Functions here take an
``AsyncConnection`` from ``MetadataStore.begin()`` so that use cases own their transactions, and
they map rows to domain objects: nothing above this package sees a row or writes SQL.
"""
