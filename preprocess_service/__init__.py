"""The preprocessing sidecar: raw text in, TF-IDF tensors to TF Serving, labels out (one vectorizer,
version pinning, the sidecar API)."""
