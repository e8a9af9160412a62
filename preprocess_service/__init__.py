"""The preprocessing sidecar: raw text in, TF-IDF tensors to TF Serving, labels out (contracts 3-5)."""
