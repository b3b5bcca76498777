"""Content credentials (C2PA): every final image says, in a signed manifest, that a model made it.

Applied to encoded bytes, after everything else (the encoder, the A1111 `parameters` chunk):
`identity.py` is who signs (the operator's certificate, or a local one made on first start),
`credentials.py` what is signed and how.
"""
