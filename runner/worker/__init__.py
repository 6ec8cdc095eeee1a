"""The worker: runs one benchmark cell inside an image (or a subprocess) and writes its run folder.

Only this subpackage imports torch and the backend libraries.
"""
