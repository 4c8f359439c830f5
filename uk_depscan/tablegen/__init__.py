"""tablegen stage."""
