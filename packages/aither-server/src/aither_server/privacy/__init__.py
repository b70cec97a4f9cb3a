"""Privacy the server enforces whatever clients send (docs/privacy.md): each model's policy applied at ingest
(``policy.py``, ``enforce.py``), kept in the database and cached per process (``policies.py``), erasure of an
entity's or a trace's data (``erasure.py``), and the audit log of both (``audit.py``)."""
