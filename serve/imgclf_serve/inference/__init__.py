"""Generated code for the Open Inference Protocol (protos/inference); regenerate with `make protos`."""
