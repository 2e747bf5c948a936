"""Models: the tokenizer, policies (built from scratch or loaded), the cached base model, SFT, and
reward models."""
