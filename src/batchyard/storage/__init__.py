"""Blob storage (local disk or S3, through the same BlobStore) and signed download URLs.

Import from the submodules: ``storage.blobs`` needs obstore, ``storage.signing`` only the stdlib.
"""
