"""The sandbox: a local Telegram Bot API emulator (`emulator`), a terminal chat on top of it
(`terminal`, `launch`), and waiting until the bot is done (`settle`)."""
