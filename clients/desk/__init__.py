"""`parlons desk`: the reception-desk translation tool, a page served to the agent's browser.

`app.py` serves the page and its WebSocket; `bridge.py` carries one conversation between
the WebSocket and the gateway's LiveConversation; `cli.py` is the command.
"""
