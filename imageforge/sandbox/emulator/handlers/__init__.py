"""The ARM resource handlers, one module per resource family, and the route table."""
