"""Generated code for the imgclf.v1 API (protos/imgclf/v1); regenerate with `make protos`."""
