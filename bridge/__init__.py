"""samroto.bridge: the local server, the wire protocol and the stdlib-only client."""
