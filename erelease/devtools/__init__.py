"""Tools for developing and demonstrating erelease: the vendor simulator, the demo, docs."""
