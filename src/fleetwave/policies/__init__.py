"""Image update policies: which images update how, on which devices."""
