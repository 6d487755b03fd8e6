"""Container registries' webhooks: their payloads taken apart, and their authenticity checked."""
