"""The composition root. Importing it first leaves aiogram's Telegram types to be built on
first use (about 140 MB less resident memory: bot/app/telegram_types.py)."""

from bot.app.telegram_types import defer_telegram_types

defer_telegram_types()
