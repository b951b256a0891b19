"""Stage 6, runtime (opt-in, imports onnxruntime): run the model, price findings, write the
candidate model with flagged layers replaced."""
