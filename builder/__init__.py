"""bale: a daemonless, Dockerfile-free OCI image builder."""

__version__ = "0.1.0"
