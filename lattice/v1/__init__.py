"""Generated from proto/lattice/v1 by `make gen`; do not edit."""
