"""Model providers: the Anthropic SDK and an offline demo model."""
