"""gRPC servicers: proto ⇄ domain conversion and error mapping, nothing more."""
