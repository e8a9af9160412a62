# Open Inference Protocol: the gRPC binding's Python messages, generated from the .proto at install time
# (the generated files are not committed; docker/Dockerfile.sidecar generates them in its build stage).
OIP_PROTO := preprocess_service/oip/grpc_predict_v2.proto
OIP_STUBS := preprocess_service/oip/grpc_predict_v2_pb2.py

$(OIP_STUBS): $(OIP_PROTO) $(STAMP)
	$(PY) -m grpc_tools.protoc -I . --python_out=. --pyi_out=. $(OIP_PROTO)

.PHONY: oip-stubs
oip-stubs: $(OIP_STUBS) ## generate the Open Inference Protocol gRPC messages (part of install)

install: oip-stubs
TEST_PREREQS += oip-stubs
