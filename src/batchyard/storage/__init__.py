"""Blob storage (local disk now, S3 later through the same BlobStore) and signed download URLs.

Import from the submodules: ``storage.blobs`` needs obstore, ``storage.signing`` only the stdlib.
"""
