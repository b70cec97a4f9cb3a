from __future__ import annotations

import os

# No model or tokenizer is ever downloaded: every pipeline here is built from a random tiny config.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
