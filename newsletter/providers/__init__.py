"""Mail services the issue is sent through, one package each."""
