"""The hosts: where the two sides meet. Each one starts a process and wires the web side
(`handlers`) to the model side (`pipelines`); nothing else imports across.

`local` is `imagegen serve`'s app, `cli` the `imagegen` command, `modal_deployment` the settings
that `modal_app.py` (the Modal host, at the top level) and `scripts/deploy.py` share.
"""
