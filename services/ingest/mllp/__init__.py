"""The HL7 MLLP listener of ingest: framing, acknowledgements, the asyncio server."""
