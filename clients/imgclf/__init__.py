"""imgclf: the Python client of the imgclf image classification server.

The generated gRPC code for the imgclf.v1 API lives in :mod:`imgclf.v1`.
"""
