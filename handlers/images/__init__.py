"""The image routes, one request path each: parse (`schemas`, `uploads`), resolve a Job (`resolve`),
run it and respond (`respond`). `routes` holds POST /v1/images/generations, /edits and /variations."""
