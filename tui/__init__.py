"""The nas3d-tui dashboard: a Textual app that watches and steers a search.

It consumes ``engine.events`` and issues commands through a ``RunHandle``
(``tui.handle``); everything it shows is rebuilt from events by
``tui.state.DashboardState``. It never imports torch (a test checks).
Entry points: ``tui.app.NasApp``, ``tui.app.run_dashboard``,
``tui.attach.AttachHandle``, ``tui.replay.ReplayHandle``.
"""
