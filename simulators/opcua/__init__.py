"""OPC UA device simulator: DI-style device Objects with changing and writable variables."""
