"""Model lifecycle: declared stable and canary versions (``source``), the traffic split, shadow copies
and the automatic fallback (``routing``), and their report on ``/v1/model`` (``schemas``)."""
