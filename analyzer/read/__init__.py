"""Stage 1, read: a model file -> a checked, payload-free ModelProto (the skeleton), with local
functions inlined and nodes in topological order."""
