"""Training: datasets, TF-IDF features, the Keras network, evaluation and SavedModel export."""
