"""Work that outlives a request: async image jobs, their records, cancellation and webhooks."""
