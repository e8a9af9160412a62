"""The contracts between training, the model server, the sidecar and the harness, in code.

- ``contracts.modeldir``: the model version directory (its layout, listing versions, publishing one);
- ``contracts.signature``: the serving signature (its name, tensor names, padding of sparse rows);
- ``contracts.version_state``: TF Serving's version states and its status answer.

Depends on numpy and orjson only (the protos are imported where a proto is needed), so every
deployable, the sidecar image included, can import it. docs/architecture.md describes each contract."""
