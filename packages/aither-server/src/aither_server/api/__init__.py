"""The HTTP API: authentication, error answers, request/response schemas and one router per resource."""
