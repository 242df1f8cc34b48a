"""imgclf_serve: the imgclf Ray Serve application (ingress, per-core model replicas)."""
