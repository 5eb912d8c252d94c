"""leon's terminal app (Textual). Entry point: :func:`leon.ui.app.run_app`; tests and the
screenshot script build the same app with :func:`leon.ui.app.make_app`.

Nothing here imports ``anthropic`` before the first frame is painted: the provider, the
stores and the agent are built in a worker after the chat screen is on screen."""
