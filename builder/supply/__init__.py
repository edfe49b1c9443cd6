"""Supply-chain artifacts: SBOMs and provenance attached to images as OCI 1.1 referrers.

Pure: an image and a view of its filesystem in, artifact bytes out. Sits above
``image`` and below ``registry`` (it may import image, layer, spec and the
top-level modules).
"""
