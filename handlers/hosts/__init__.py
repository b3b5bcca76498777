"""The hosts: where the two sides meet. Each one starts a process and wires the web side
(`handlers`) to the model side (`pipelines`); nothing else imports across.

`local` is `imagegen serve`'s app, `cli` the `imagegen` command, `modal` everything Modal-specific
that `modal_app.py` (the Modal host's declarations, at the top level) and `scripts/deploy.py` use.
"""
