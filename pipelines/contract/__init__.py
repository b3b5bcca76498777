"""The contract: what the web side (`handlers`) and the model side (`pipelines`) share.

`Job` and `ImageEvent` (what crosses between them, and the Modal boundary, pickled), the
`Engine` protocol, `APIError` with the named errors, the model catalog, and how the images a
Job carries are read and written. It imports the standard library, pydantic and Pillow only,
never either side: both sides import it, so dependencies run one way.
"""
