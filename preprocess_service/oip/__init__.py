"""The Open Inference Protocol (KServe "v2", also spoken by Triton and MLServer) on the sidecar.

``core`` holds what both transports share (metadata, the text input's checks, one inference as
named output tensors); ``rest`` is the HTTP/JSON binding under ``/v2`` (with the binary tensor
extension that stock clients use by default); ``grpc_server`` the gRPC binding on its own port."""
