"""The grpc.aio server, its UNIX socket, interceptors, and the mapping of core errors to gRPC status."""
