"""Route modules: thin handlers that validate, delegate to the queue or predictor, and shape answers."""
