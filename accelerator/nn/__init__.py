"""ONNX int8 models on the accelerator."""
