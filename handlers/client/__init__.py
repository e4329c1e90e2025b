"""Routers of the clients: their private chat with the bot and the buttons of its messages."""
