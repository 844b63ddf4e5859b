"""HTTP API: FastAPI routes, request/response schemas, auth, error mapping, SSE."""
